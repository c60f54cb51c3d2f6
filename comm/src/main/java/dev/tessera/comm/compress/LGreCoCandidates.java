package dev.tessera.comm.compress;

import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * L-GreCo's candidate grids per compressor family, with the uniform default each one's budget comes from
 * (ALGORITHMS.md 4, "Candidate sets and defaults"; the paper's exact grids are unverified, these are ours). Every call
 * returns fresh arrays, ascending.
 */
public final class LGreCoCandidates {

    private static final int[] POWER_SGD_RANKS = {1, 2, 4, 8, 16, 32};

    private LGreCoCandidates() {
    }

    /** A grid of real-valued settings and the index of the default among them. */
    public record Reals(double[] values, int defaultIndex) {
        public Reals {
            if (defaultIndex < 0 || defaultIndex >= values.length) {
                throw new IllegalArgumentException("default index " + defaultIndex + " outside " + values.length
                        + " candidates");
            }
        }

        public double defaultValue() {
            return values[defaultIndex];
        }
    }

    /** A grid of integer settings and the index of the default among them. */
    public record Integers(int[] values, int defaultIndex) {
        public Integers {
            if (defaultIndex < 0 || defaultIndex >= values.length) {
                throw new IllegalArgumentException("default index " + defaultIndex + " outside " + values.length
                        + " candidates");
            }
        }

        public int defaultValue() {
            return values[defaultIndex];
        }
    }

    /** Top-K densities 0.1% to 10%; default 1%. */
    public static Reals topKDensities() {
        return new Reals(new double[] {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1}, 3);
    }

    /** QSGD bits per value including the sign, 2 to 8; default 4 (bucket 128 throughout). */
    public static Integers qsgdBits() {
        return new Integers(new int[] {2, 3, 4, 5, 6, 7, 8}, 2);
    }

    /**
     * PowerSGD ranks for an {@code n x m} matrix: {1, 2, 4, 8, 16, 32} and the uniform default rank, each capped at
     * {@code min(n, m)} (a higher rank is not a different factorisation), duplicates removed. The default is capped
     * too, since that is the rank the uniform baseline itself can run on this matrix.
     */
    public static Integers powerSgdRanks(int n, int m, int defaultRank) {
        if (n < 1 || m < 1 || defaultRank < 1) {
            throw new IllegalArgumentException("PowerSGD ranks: " + n + " x " + m + " matrix, default rank "
                    + defaultRank + "; all must be >= 1");
        }
        int cap = Math.min(n, m);
        int[] distinct = IntStream.concat(Arrays.stream(POWER_SGD_RANKS), IntStream.of(defaultRank))
                .map(r -> Math.min(r, cap)).sorted().distinct().toArray();
        return new Integers(distinct, Arrays.binarySearch(distinct, Math.min(defaultRank, cap)));
    }
}
