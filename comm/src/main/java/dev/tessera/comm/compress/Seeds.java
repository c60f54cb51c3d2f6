package dev.tessera.comm.compress;

/**
 * The seed of one encoding: a job's seed, the round (step), the layer and the rank, mixed by SplitMix64's
 * finaliser, so that a resumed run draws the same random choices and no two encodings share a stream.
 */
final class Seeds {

    private Seeds() {
    }

    static long of(long seed, long round, int layer, int rank) {
        long h = mix(seed ^ 0x9E3779B97F4A7C15L);
        h = mix(h ^ round);
        h = mix(h ^ layer);
        return mix(h ^ rank);
    }

    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
