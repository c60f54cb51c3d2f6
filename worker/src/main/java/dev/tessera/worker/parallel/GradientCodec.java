package dev.tessera.worker.parallel;

import dev.tessera.comm.CollectiveHandle;
import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.ReduceOp;
import dev.tessera.worker.model.ParameterStore;
import java.util.List;
import org.agrona.MutableDirectBuffer;

/**
 * How one gradient bucket crosses the data-parallel group in {@link BucketedAllReduce}. {@link #IDENTITY} sends it
 * whole: an all-reduce (sum). A compressing codec ({@link CompressedGradients}) encodes the bucket with error
 * feedback, exchanges its encoded form and leaves the decoded sum in the bucket; {@code bucket} (0 = the last
 * tensors', the order backward finishes them) lets it keep state per bucket, laid out by {@link #plan}.
 */
@FunctionalInterface
public interface GradientCodec {

    /** No compression. */
    GradientCodec IDENTITY = (group, bucket, gradients, dtype) -> group.allReduceAsync(gradients, dtype, ReduceOp.SUM);

    /**
     * Called once, before any reduction, with the group, the tensors of the buffer and the buckets'
     * {@code [start, end)} element ranges in the order {@link #reduceAsync} numbers them.
     */
    default void plan(ProcessGroup group, List<ParameterStore.Tensor> tensors, long[][] bucketRanges) {
    }

    /** Starts reducing {@code gradients} (one bucket of the flat gradient buffer) over {@code group}, in place. */
    CollectiveHandle reduceAsync(ProcessGroup group, int bucket, MutableDirectBuffer gradients, DType dtype);
}
