package dev.tessera.worker.parallel;

import dev.tessera.optimizers.OptimizerSpec;

/**
 * What {@link Parallelize} needs to know of the job: the ZeRO stage (0: plain data parallelism), the optimizer
 * (ZeRO cuts its shards where the optimizer's state is exact, on row boundaries), the gradient bucket size, and
 * how buckets cross the group.
 */
public record ParallelSpec(int zeroStage, OptimizerSpec optimizer, long bucketElements, GradientCodec codec) {

    /** Gradient buckets of 1M elements (4 MB in float32): big enough for the ring, small enough to overlap. */
    public static final long BUCKET_ELEMENTS = 1 << 20;

    public ParallelSpec {
        if (zeroStage < 0 || zeroStage > 3) {
            throw new IllegalArgumentException("ZeRO stage must be 0, 1, 2 or 3, got " + zeroStage);
        }
        if (bucketElements < 1) {
            throw new IllegalArgumentException("gradient buckets must hold at least one element, got " + bucketElements);
        }
    }

    /** The default buckets, uncompressed. */
    public static ParallelSpec of(int zeroStage, OptimizerSpec optimizer) {
        return new ParallelSpec(zeroStage, optimizer, BUCKET_ELEMENTS, GradientCodec.IDENTITY);
    }
}
