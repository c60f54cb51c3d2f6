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

    /**
     * The seed of one chunk's encoding within the encoding {@code of} ({@link #of}): {@code stage} 0 for a member's
     * own chunk encodings, 1 for an owner's re-encoding of a summed chunk, so the two never share a stream.
     */
    static long ofChunk(long of, int stage, int chunk) {
        return SplitMix64.mix(of ^ SplitMix64.mix(((long) stage << 32 | chunk) + SplitMix64.GAMMA));
    }
}
