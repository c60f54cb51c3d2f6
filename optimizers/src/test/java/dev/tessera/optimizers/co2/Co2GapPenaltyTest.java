package dev.tessera.optimizers.co2;

import static dev.tessera.optimizers.co2.Co2Rounds.floats;
import static dev.tessera.optimizers.co2.Co2Rounds.read;
import static dev.tessera.optimizers.co2.Co2Rounds.view;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.optimizers.ParamSpan;
import dev.tessera.optimizers.Shard;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The pluggable penalty lambda(l, gap, Delta) of ALGORITHMS.md §6: the constant default and our gap-scaled rule. */
class Co2GapPenaltyTest {

    private static final ParamSpan W = new ParamSpan("w", 0, 4, new long[] {2, 2});

    private static final List<ParamSpan> THREE = List.of(
            new ParamSpan("a", 0, 4, new long[] {2, 2}),
            new ParamSpan("b", 4, 5, new long[] {5}),
            new ParamSpan("c", 9, 2, new long[] {2}));

    @Test
    void constantIgnoresTheGap() {
        GapPenalty constant = GapPenalty.constant(1.5);
        assertEquals(1.5, constant.lambda(W, 0, 1));
        assertEquals(1.5, constant.lambda(W, 100, 1e-9));
        assertFalse(constant.usesNorms());
    }

    @Test
    void gapScaledIsTheConstantWithoutGapAndGrowsWithIt() {
        GapPenalty gap = GapPenalty.gapScaled(1.5);
        assertTrue(gap.usesNorms());
        assertEquals(1.5, gap.lambda(W, 0, 3.0), "no gap: the constant");
        assertEquals(1.5, gap.lambda(W, 2.0, 0), "no pseudo-gradient: the constant (the step is zero anyway)");
        assertEquals(1.5 * 2, gap.lambda(W, 3.0, 3.0), "a gap as large as Delta doubles lambda");
        assertEquals(1.5 * 11, gap.lambda(W, 10.0, 1.0));
        assertTrue(gap.lambda(W, 2.0, 1.0) > gap.lambda(W, 1.0, 1.0));
    }

    @Test
    void refusesANonPositiveLambda() {
        assertThrows(IllegalArgumentException.class, () -> GapPenalty.constant(0));
        assertThrows(IllegalArgumentException.class, () -> GapPenalty.gapScaled(-1));
    }

    /**
     * beta = 0, so m is the penalised pseudo-gradient itself. The first outer step follows the skip of round 0,
     * where x = x_prev: no gap, so the gap-scaled step has the constant's bits. The second is measured from
     * x_1 and applied at x_2 = x_1 - m_1: a gap of ||m_1|| per tensor, a hundred times the new pseudo-gradient,
     * so the step shrinks by lambda / lambda_l = 1 / (1 + ||gap_l|| / ||Delta_l||), about 1/100.
     */
    @Test
    void gapScaledEqualsTheConstantWithoutGapAndShrinksTheStaleStep() {
        int n = 11;
        double lambda = 1.5;
        Co2Config config = new Co2Config(3, 1.0, 0.0, lambda, false, 1.0);
        SplittableRandom rnd = new SplittableRandom(23);
        float[] x0 = new float[n];
        float[] ybar0 = new float[n];
        float[] ybar1 = new float[n];
        for (int k = 0; k < n; k++) {
            x0[k] = (float) rnd.nextDouble(-1, 1);
            ybar0[k] = x0[k] - (float) rnd.nextDouble(0.5, 1.0); // a large first step
            ybar1[k] = x0[k] - (float) rnd.nextDouble(-0.01, 0.01); // a small stale pseudo-gradient
        }
        INDArray liveC = floats(x0);
        INDArray liveG = floats(x0);
        Co2OuterStep constant = new Co2OuterStep(liveC, THREE, config, GapPenalty.constant(lambda), Shard.whole(n));
        Co2OuterStep gapped = new Co2OuterStep(liveG, THREE, config, GapPenalty.gapScaled(lambda), Shard.whole(n));
        for (Co2OuterStep outer : List.of(constant, gapped)) {
            outer.begin();
            outer.skip();
            outer.apply(view(floats(ybar0)));
        }
        for (String name : List.of("co2.x_prev", "co2.x", "co2.outer_momentum")) {
            float[] c = read(constant.state().get(name).data());
            float[] g = read(gapped.state().get(name).data());
            for (int k = 0; k < n; k++) {
                assertEquals(Float.floatToRawIntBits(c[k]), Float.floatToRawIntBits(g[k]), name + " " + k);
            }
        }

        float[] xPrev = read(gapped.state().get("co2.x_prev").data()); // x_1
        float[] x = read(gapped.state().get("co2.x").data()); // x_2
        for (Co2OuterStep outer : List.of(constant, gapped)) {
            outer.apply(view(floats(ybar1)));
        }
        float[] mC = read(constant.state().get("co2.outer_momentum").data());
        float[] mG = read(gapped.state().get("co2.outer_momentum").data());
        for (ParamSpan span : THREE) {
            int lo = (int) span.offset();
            int hi = lo + (int) span.numel();
            double gapSq = 0;
            double deltaSq = 0;
            for (int k = lo; k < hi; k++) {
                double g = (double) x[k] - xPrev[k];
                double d = (double) xPrev[k] - ybar1[k];
                gapSq += g * g;
                deltaSq += d * d;
            }
            double lambdaL = lambda * (1 + Math.sqrt(gapSq) / Math.sqrt(deltaSq));
            assertTrue(lambdaL > 50 * lambda, span.name() + ": a large gap, lambda_l = " + lambdaL);
            for (int k = lo; k < hi; k++) {
                double expected = mC[k] * lambda / lambdaL;
                // two float32 divisions and the rounding of lambda_l: a few 2^-24 relative
                assertEquals(expected, mG[k], 1e-6 * Math.abs(expected), span.name() + " element " + k);
                assertTrue(Math.abs(mG[k]) < Math.abs(mC[k]) || mC[k] == 0, "the stale step shrinks");
            }
        }
    }
}
