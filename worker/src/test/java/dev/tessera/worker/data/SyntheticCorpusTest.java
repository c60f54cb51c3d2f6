package dev.tessera.worker.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.comm.UserInputException;
import dev.tessera.worker.data.TokenSource.Split;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class SyntheticCorpusTest {

    private static final int SEQ = 128;
    private final SyntheticCorpus corpus = SyntheticCorpus.withDefaults(SEQ);

    @Test
    void floorIsAtMostHalfTheUnigramEntropyAndInTheTargetRange() {
        double floor = corpus.entropyFloor().orElseThrow();
        double unigram = corpus.unigramEntropy();
        System.out.println(corpus.describe());
        assertTrue(floor <= 0.5 * unigram, "floor " + floor + " vs unigram " + unigram);
        assertTrue(floor >= 0.9 && floor <= 1.8, "floor " + floor + " nats");
        assertTrue(unigram <= Math.log(256), "unigram " + unigram);
        // Longer sequences amortise the costlier first target: the floor falls towards the rate.
        assertTrue(corpus.entropyFloor(8) > corpus.entropyFloor(SEQ));
        assertTrue(corpus.entropyFloor(SEQ) > corpus.entropyRate());
    }

    /** The true source's mean NLL over many samples converges to the stated floor: the floor is exact. */
    @Test
    void monteCarloLossOfTheTrueModelMatchesTheFloor() {
        int seq = 64;
        SyntheticCorpus c = SyntheticCorpus.withDefaults(seq);
        int count = 4000;
        int[] in = new int[count * seq];
        int[] tg = new int[count * seq];
        c.fill(Split.TRAIN, 5, 0, count, seq, in, tg);
        double loss = c.optimalLoss(in, tg, count, seq);
        double floor = c.entropyFloor().orElseThrow();
        assertEquals(floor, loss, 0.01 * floor, "Monte-Carlo " + loss + " vs exact " + floor);
    }

    @Test
    void alsoExactForASmallDenseChain() {
        // Branching = symbols: every context can follow every other, a different regime from the default.
        SyntheticCorpus c = new SyntheticCorpus(new SyntheticCorpus.Spec(3, 4, 4, 7), 16);
        int count = 20000;
        int[] in = new int[count * 16];
        int[] tg = new int[count * 16];
        c.fill(Split.VALIDATION, 0, 0, count, 16, in, tg);
        double floor = c.entropyFloor().orElseThrow();
        assertEquals(floor, c.optimalLoss(in, tg, count, 16), 0.01 * floor);
    }

    /**
     * The default is meant to be learnable in a few hundred steps of 16 x 128 tokens. A model cannot beat
     * the statistics it sees, so check those suffice: an order-2 count model (add-0.1 smoothing) fitted on
     * 300 such steps must come within 10% of the floor on validation data.
     */
    @Test
    void aFewHundredStepsOfDataSufficeToApproachTheFloor() {
        int s = corpus.spec().symbolsPerDomain();
        int batch = 16;
        int[] in = new int[batch * SEQ];
        int[] tg = new int[batch * SEQ];
        // counts[(prev * s + last_local) * s + next_local]; prev == -1 marks the first target (context x0 only).
        int[] pair = new int[256 * s * s];
        int[] first = new int[256 * s];
        for (int step = 0; step < 300; step++) {
            corpus.fill(Split.TRAIN, step, 0, batch, SEQ, in, tg);
            for (int j = 0; j < batch; j++) {
                int base = j * SEQ;
                first[in[base] * s + tg[base] % s]++;
                for (int t = 1; t < SEQ; t++) {
                    pair[(in[base + t - 1] * s + in[base + t] % s) * s + tg[base + t] % s]++;
                }
            }
        }
        int count = 200;
        int[] vin = new int[count * SEQ];
        int[] vtg = new int[count * SEQ];
        corpus.fill(Split.VALIDATION, 0, 0, count, SEQ, vin, vtg);
        double alpha = 0.1;
        double nll = 0;
        for (int j = 0; j < count; j++) {
            int base = j * SEQ;
            nll -= Math.log(smoothed(first, vin[base], vtg[base] % s, s, alpha));
            for (int t = 1; t < SEQ; t++) {
                int ctx = vin[base + t - 1] * s + vin[base + t] % s;
                nll -= Math.log(smoothed(pair, ctx, vtg[base + t] % s, s, alpha));
            }
        }
        double loss = nll / (count * SEQ);
        double floor = corpus.entropyFloor().orElseThrow();
        assertTrue(loss <= 1.1 * floor, "count model " + loss + " vs floor " + floor);
    }

    private static double smoothed(int[] counts, int ctx, int next, int s, double alpha) {
        double total = 0;
        for (int c = 0; c < s; c++) {
            total += counts[ctx * s + c];
        }
        return (counts[ctx * s + next] + alpha) / (total + alpha * s);
    }

    @Test
    void tokensStayInTheirDomainAndTargetsAreShiftedInputs() {
        int count = 50;
        int[] in = new int[count * SEQ];
        int[] tg = new int[count * SEQ];
        corpus.fill(Split.TRAIN, 0, 0, count, SEQ, in, tg);
        int s = corpus.spec().symbolsPerDomain();
        for (int j = 0; j < count; j++) {
            int domain = in[j * SEQ] / s;
            for (int t = 0; t < SEQ; t++) {
                assertEquals(domain, in[j * SEQ + t] / s);
                assertEquals(domain, tg[j * SEQ + t] / s);
                if (t + 1 < SEQ) {
                    assertEquals(tg[j * SEQ + t], in[j * SEQ + t + 1]);
                }
            }
        }
    }

    @Test
    void deterministicAndSliceInvariant() {
        int count = 16;
        int[] inAll = new int[count * SEQ];
        int[] tgAll = new int[count * SEQ];
        corpus.fill(Split.TRAIN, 42, 0, count, SEQ, inAll, tgAll);

        int[] again = new int[count * SEQ];
        SyntheticCorpus.withDefaults(SEQ).fill(Split.TRAIN, 42, 0, count, SEQ, again, new int[count * SEQ]);
        assertArrayEquals(inAll, again, "same seed, step and samples give the same tokens");

        int dp = 4;
        int per = count / dp;
        for (int d = 0; d < dp; d++) {
            int[] in = new int[per * SEQ];
            int[] tg = new int[per * SEQ];
            corpus.fill(Split.TRAIN, 42, d * per, per, SEQ, in, tg);
            assertArrayEquals(Arrays.copyOfRange(inAll, d * per * SEQ, (d + 1) * per * SEQ), in);
            assertArrayEquals(Arrays.copyOfRange(tgAll, d * per * SEQ, (d + 1) * per * SEQ), tg);
        }

        for (int j = 1; j < count; j++) {
            assertFalse(Arrays.equals(Arrays.copyOfRange(inAll, 0, SEQ), Arrays.copyOfRange(inAll, j * SEQ, (j + 1) * SEQ)),
                    "samples 0 and " + j + " differ");
        }
        int[] otherStep = new int[count * SEQ];
        corpus.fill(Split.TRAIN, 43, 0, count, SEQ, otherStep, new int[count * SEQ]);
        assertFalse(Arrays.equals(inAll, otherStep));
        int[] validation = new int[count * SEQ];
        corpus.fill(Split.VALIDATION, 42, 0, count, SEQ, validation, new int[count * SEQ]);
        assertFalse(Arrays.equals(inAll, validation));
    }

    @Test
    void rejectsImpossibleSpecs() {
        UserInputException e = assertThrows(UserInputException.class, () -> new SyntheticCorpus.Spec(16, 32, 4, 1));
        assertTrue(e.getMessage().contains("exceeds the vocabulary"), e.getMessage());
        assertThrows(UserInputException.class, () -> new SyntheticCorpus.Spec(8, 16, 17, 1));
        assertThrows(UserInputException.class, () -> new SyntheticCorpus.Spec(0, 16, 4, 1));
    }
}
