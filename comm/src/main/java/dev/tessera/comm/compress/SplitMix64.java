package dev.tessera.comm.compress;

/**
 * SplitMix64 (Steele, Lea and Flood, 2014) as pure functions of a counter, so a codec draws its random numbers
 * from a seed without allocating a generator per call, and element {@code i} of a stream can be drawn without
 * drawing the ones before it.
 */
final class SplitMix64 {

    /** The golden-ratio increment between successive states. */
    static final long GAMMA = 0x9E3779B97F4A7C15L;

    private SplitMix64() {
    }

    /** The output function: a bijective 64-bit mix of one state. */
    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** A uniform double in [0, 1) from one state: the top 53 bits of its mix. */
    static double unit(long state) {
        return (mix(state) >>> 11) * 0x1.0p-53;
    }

    /** Element {@code i} of a standard normal stream keyed by {@code key} (Box-Muller on states 2i and 2i+1). */
    static double gaussian(long key, long i) {
        double u1 = unit(key + GAMMA * (2 * i + 1));
        double u2 = unit(key + GAMMA * (2 * i + 2));
        // 1 - u1 lies in (0, 1], so the log is finite.
        return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
    }
}
