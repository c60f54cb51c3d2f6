package dev.tessera.worker.parallel;

/**
 * {@code mesh.sp_mode}: how attention crosses the sequence-parallel ranks (ALGORITHMS.md 8), each exact. The scheme
 * also decides where a rank's tokens sit: the all-gather and the ring attend a rank's queries against keys of the
 * whole sequence, so zig-zag placement gives every rank the same causal work; Ulysses attends whole sequences per
 * head, where placement changes nothing, so it keeps contiguous segments.
 */
public enum SequenceScheme {
    /** All-gather K|V, attend the local queries, reduce-scatter dK|dV (8.3, our LSS of 8.1). */
    ALLGATHER(SequencePlacement.ZIGZAG),
    /** K|V blocks around a ring, merged by online softmax, the next block's transfer under the current one (8.2). */
    RING(SequencePlacement.ZIGZAG),
    /** All-to-all from sequence shards to head shards and back (8.4); needs n_heads divisible by sp. */
    ULYSSES(SequencePlacement.CONTIGUOUS);

    private final SequencePlacement placement;

    SequenceScheme(SequencePlacement placement) {
        this.placement = placement;
    }

    public SequencePlacement placement() {
        return placement;
    }

    /** The parts each sequence is cut into: {@code seq_len} must be a multiple. */
    public int partsOf(int sp) {
        return placement == SequencePlacement.ZIGZAG ? 2 * sp : sp;
    }
}
