package dev.tessera.worker.parallel;

import dev.tessera.comm.CollectiveHandle;
import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.ReduceOp;
import org.agrona.MutableDirectBuffer;

/**
 * How one gradient bucket crosses the data-parallel group in {@link BucketedAllReduce}. {@link #IDENTITY} sends it
 * whole: an all-reduce (sum). A compressing codec (Top-K, quantisation, low-rank; ALGORITHMS.md) encodes the
 * bucket with error feedback, exchanges its encoded form and leaves the decoded sum in the bucket; {@code bucket}
 * (0 = the last tensors', the order backward finishes them) lets it keep state per bucket.
 */
@FunctionalInterface
public interface GradientCodec {

    /** No compression. */
    GradientCodec IDENTITY = (group, bucket, gradients, dtype) -> group.allReduceAsync(gradients, dtype, ReduceOp.SUM);

    /** Starts reducing {@code gradients} (one bucket of the flat gradient buffer) over {@code group}, in place. */
    CollectiveHandle reduceAsync(ProcessGroup group, int bucket, MutableDirectBuffer gradients, DType dtype);
}
