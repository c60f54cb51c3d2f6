package dev.tessera.worker.parallel;

import dev.tessera.optimizers.OptimizerSpec;

/**
 * What {@link Parallelize} needs to know of the job: the ZeRO stage (0: plain data parallelism), the optimizer
 * (ZeRO cuts its shards where the optimizer's state is exact, on row boundaries), the gradient bucket size, how
 * buckets cross the group, and how MoE tokens cross the expert group: {@code ranksPerNode} {@link #FLAT} for one
 * exchange, else two hops with nodes of that many ranks ({@link #PER_HOST}: the expert group's ranks per host),
 * and whether it goes in a chunk per held expert that overlaps the experts' compute ({@code overlapExperts}), and
 * how attention crosses the sequence-parallel group.
 */
public record ParallelSpec(int zeroStage, OptimizerSpec optimizer, long bucketElements, GradientCodec codec,
                           int ranksPerNode, boolean overlapExperts, SequenceScheme sequence) {

    /** {@link #ranksPerNode}: the flat all-to-all. */
    public static final int FLAT = -1;
    /** {@link #ranksPerNode}: two hops, a node being the expert group's ranks on one host. */
    public static final int PER_HOST = 0;

    /** Gradient buckets of 1M elements (4 MB in float32): big enough for the ring, small enough to overlap. */
    public static final long BUCKET_ELEMENTS = 1 << 20;

    public ParallelSpec {
        if (zeroStage < 0 || zeroStage > 3) {
            throw new IllegalArgumentException("ZeRO stage must be 0, 1, 2 or 3, got " + zeroStage);
        }
        if (ranksPerNode < FLAT) {
            throw new IllegalArgumentException("ranks per node must be FLAT, PER_HOST or positive, got " + ranksPerNode);
        }
        java.util.Objects.requireNonNull(sequence, "sequence scheme");
        if (bucketElements < 1) {
            throw new IllegalArgumentException("gradient buckets must hold at least one element, got " + bucketElements);
        }
    }

    /** The default buckets, uncompressed, the flat all-to-all and the all-gather of K|V. */
    public static ParallelSpec of(int zeroStage, OptimizerSpec optimizer) {
        return new ParallelSpec(zeroStage, optimizer, BUCKET_ELEMENTS, GradientCodec.IDENTITY, FLAT, false,
                SequenceScheme.ALLGATHER);
    }

    /** The same, with MoE tokens crossing the expert group as {@code ranksPerNode} and {@code overlap} say. */
    public ParallelSpec withAllToAll(int ranksPerNode, boolean overlap) {
        return new ParallelSpec(zeroStage, optimizer, bucketElements, codec, ranksPerNode, overlap, sequence);
    }

    /** The same, with gradient buckets crossing the data-parallel group by {@code codec}. */
    public ParallelSpec withCodec(GradientCodec codec) {
        return new ParallelSpec(zeroStage, optimizer, bucketElements, codec, ranksPerNode, overlapExperts, sequence);
    }

    /** The same, with attention crossing the sequence-parallel group by {@code scheme}. */
    public ParallelSpec withSequence(SequenceScheme scheme) {
        return new ParallelSpec(zeroStage, optimizer, bucketElements, codec, ranksPerNode, overlapExperts, scheme);
    }
}
