package dev.tessera.worker.parallel;

/**
 * Which tokens of each sequence a sequence-parallel rank holds (ALGORITHMS.md 8.2). {@link #CONTIGUOUS}: rank i of N
 * holds segment i, the i-th N-th of the sequence ({@link Mesh#sequenceSegment}); under a causal mask the last rank
 * then does about twice the average attention work and the first almost none. {@link #ZIGZAG}: the sequence is cut
 * into 2N equal chunks and rank i holds chunks i and 2N-1-i, so every rank does the same work,
 * {@code s(s+1)/(2N)} unmasked score entries.
 */
public enum SequencePlacement {
    CONTIGUOUS,
    ZIGZAG;

    /**
     * The global positions {@code rank} of {@code ranks} holds of a sequence of {@code seq} tokens, in the order it
     * holds them (ascending).
     *
     * @throws IllegalArgumentException when {@code seq} does not cut into the placement's equal parts
     */
    public int[] positions(int seq, int ranks, int rank) {
        if (ranks < 1 || rank < 0 || rank >= ranks) {
            throw new IllegalArgumentException("rank " + rank + " of " + ranks);
        }
        int parts = this == CONTIGUOUS ? ranks : 2 * ranks;
        if (seq % parts != 0) {
            throw new IllegalArgumentException("a sequence of " + seq + " tokens does not cut into " + parts
                    + " equal " + (this == CONTIGUOUS ? "segments" : "zig-zag chunks"));
        }
        int chunk = seq / parts;
        int[] positions = new int[seq / ranks];
        int at = 0;
        for (int c : this == CONTIGUOUS ? new int[] {rank} : new int[] {rank, parts - 1 - rank}) {
            for (int t = 0; t < chunk; t++) {
                positions[at++] = c * chunk + t;
            }
        }
        return positions;
    }

    /**
     * The score entries causal attention computes for queries at {@code positions} against the whole sequence:
     * position p sees keys 0..p, so {@code sum (p + 1)}. The work a rank's attention does, up to a constant.
     */
    public static long causalScoreEntries(int[] positions) {
        long entries = 0;
        for (int p : positions) {
            entries += p + 1L;
        }
        return entries;
    }
}
