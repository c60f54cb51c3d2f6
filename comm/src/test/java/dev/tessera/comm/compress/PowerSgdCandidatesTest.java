package dev.tessera.comm.compress;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

/**
 * L-GreCo's PowerSGD family: each matrix's ranks are capped by its shape (so layers differ in how many they have), a
 * rank's size is P and Q in float32, and its error is one seeded power iteration's, the same numbers every time.
 */
class PowerSgdCandidatesTest {

    @Test
    void ranksAreCappedPerLayerAndTheDefaultIsTheUniformRank() {
        PowerSgdCandidates family = new PowerSgdCandidates(new int[] {64, 6, 3}, new int[] {48, 40, 2}, 4, 7);
        assertEquals(3, family.layers());
        assertEquals(6, family.count(0)); // 1 2 4 8 16 32
        assertEquals(4, family.count(1)); // 1 2 4 6
        assertEquals(2, family.count(2)); // 1 2
        assertEquals(4, family.rank(0, family.defaultIndex(0)));
        assertEquals(4, family.rank(1, family.defaultIndex(1)));
        assertEquals(2, family.rank(2, family.defaultIndex(2)), "the default is capped too");
        assertEquals(6, family.rank(1, 3));
    }

    @Test
    void sizesFollowTheModelAndErrorsFallWithTheRankAsSingleProcessErrorHasThem() {
        int n = 64;
        int m = 48;
        long seed = 7;
        UnsafeBuffer values = new UnsafeBuffer(new byte[4 * (5 + n * m)]);
        SplittableRandom rng = new SplittableRandom(3);
        for (int k = 0; k < 12; k++) { // a decaying spectrum, from element 5 on
            double[] u = rng.doubles(n).map(v -> v - 0.5).toArray();
            double[] v = rng.doubles(m).map(w -> w - 0.5).toArray();
            double weight = Math.pow(0.6, k);
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < m; j++) {
                    int o = 4 * (5 + i * m + j);
                    values.putFloat(o, (float) (values.getFloat(o) + weight * u[i] * v[j]));
                }
            }
        }
        PowerSgdCandidates family = new PowerSgdCandidates(new int[] {10, n}, new int[] {10, m}, 4, seed);
        int count = family.count(1);
        long[] sizes = new long[count];
        double[] errors = new double[count];
        family.measure(1, values, 5, n * m, sizes, errors);
        double previous = Double.POSITIVE_INFINITY;
        for (int c = 0; c < count; c++) {
            int r = family.rank(1, c);
            assertEquals(32L * r * (n + m), sizes[c], "rank " + r + ": P (n x r) and Q (m x r) in float32");
            assertEquals(PowerSgd.singleProcessError(values, 5, n, m, r, Seeds.of(seed, 0, 1, 0)), errors[c], 0.0,
                    "rank " + r);
            assertTrue(errors[c] < previous, "rank " + r + ": " + errors[c] + " after " + previous);
            previous = errors[c];
        }
        long[] again = new long[count];
        double[] errorsAgain = new double[count];
        family.measure(1, values, 5, n * m, again, errorsAgain);
        assertArrayEquals(sizes, again);
        assertArrayEquals(errors, errorsAgain, 0.0, "a fixed seed per layer: the same measurement every time");
    }
}
