package dev.tessera.comm.compress;

/**
 * The seed of one encoding: a job's seed, the round (step), the layer and the rank, mixed by SplitMix64's
 * finaliser, so that a resumed run draws the same random choices and no two encodings share a stream.
 */
final class Seeds {

    private Seeds() {
    }

    static long of(long seed, long round, int layer, int rank) {
        long h = SplitMix64.mix(seed ^ 0x9E3779B97F4A7C15L);
        h = SplitMix64.mix(h ^ round);
        h = SplitMix64.mix(h ^ layer);
        return SplitMix64.mix(h ^ rank);
    }
}
