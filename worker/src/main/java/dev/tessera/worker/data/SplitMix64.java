package dev.tessera.worker.data;

/**
 * SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast generator whose finaliser is a strong 64-bit mixer.
 * Data sources use {@link #hash} to derive a sample's randomness from its coordinates alone, so a sample
 * never depends on which rank asked for it or in which order.
 */
public final class SplitMix64 {

    private static final long GOLDEN_GAMMA = 0x9E3779B97F4A7C15L;

    private long state;

    public SplitMix64(long seed) {
        this.state = seed;
    }

    /** The SplitMix64 finaliser: a bijection on 64-bit values with full avalanche. */
    public static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /**
     * Hashes a tuple of coordinates. Each element is folded in after a full mix, so (a, b) and (b, a)
     * or (a+1, b-1) land far apart.
     */
    public static long hash(long... parts) {
        long h = GOLDEN_GAMMA;
        for (long p : parts) {
            h = mix(h + GOLDEN_GAMMA + p);
        }
        return h;
    }

    public long nextLong() {
        state += GOLDEN_GAMMA;
        return mix(state);
    }

    /** Uniform in [0, 1) with 53 random bits. */
    public double nextDouble() {
        return (nextLong() >>> 11) * 0x1.0p-53;
    }

    /** Uniform in [0, bound); Lemire's multiply-shift (its bias, below 2^-32 here, is irrelevant for data). */
    public int nextInt(int bound) {
        if (bound <= 0) {
            throw new IllegalArgumentException("bound must be positive: " + bound);
        }
        return (int) (((nextLong() >>> 32) * bound) >>> 32);
    }
}
