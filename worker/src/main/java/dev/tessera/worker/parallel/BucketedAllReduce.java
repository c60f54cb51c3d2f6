package dev.tessera.worker.parallel;

import dev.tessera.comm.CollectiveHandle;
import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.optimizers.kernel.NativeMemory;
import dev.tessera.worker.model.GradientSync;
import dev.tessera.worker.model.ParameterStore;
import java.util.List;
import org.agrona.concurrent.UnsafeBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Data-parallel gradient reduction as PyTorch DDP does it: the flat gradient buffer is cut into buckets on
 * tensor boundaries, last tensor first (the order backward finishes them), and each bucket's all-reduce (sum)
 * starts as soon as backward has passed its first element, overlapping the rest of backward. The loss is
 * already normalised by the global token count, so the sum is the global gradient. A {@link GradientCodec} says how
 * each bucket crosses the group (whole, unless a compressing codec is given).
 */
public final class BucketedAllReduce implements GradientSync {

    private final ProcessGroup group;
    private final GradientCodec codec;
    private final DType dtype;
    private final long[] bucketStart;     // element offsets, bucket 0 = the end of the buffer
    private final INDArray flatGrads;     // held for the buckets, which do not keep it alive
    private final UnsafeBuffer[] buckets; // views of the gradient buffer, made once
    private final CollectiveHandle[] inFlight;
    private int launched;

    public BucketedAllReduce(ProcessGroup group, GradientCodec codec, INDArray flatGrads,
                             List<ParameterStore.Tensor> tensors, long capElements) {
        this.group = group;
        this.codec = codec;
        this.dtype = flatGrads.dataType() == DataType.DOUBLE ? DType.FLOAT64 : DType.FLOAT32;
        long[][] ranges = Buckets.reverseOrder(tensors, capElements,
                NativeMemory.MAX_VIEW_BYTES / flatGrads.dataType().width());
        this.flatGrads = flatGrads;
        this.bucketStart = new long[ranges.length];
        this.buckets = new UnsafeBuffer[ranges.length];
        for (int i = 0; i < ranges.length; i++) {
            bucketStart[i] = ranges[i][0];
            buckets[i] = NativeMemory.unsafe(flatGrads, ranges[i][0], ranges[i][1]);
        }
        this.inFlight = new CollectiveHandle[ranges.length];
        codec.plan(group, tensors, ranges);
    }

    public int bucketCount() {
        return buckets.length;
    }

    @Override
    public void ready(long fromElement) {
        while (launched < buckets.length && bucketStart[launched] >= fromElement) {
            inFlight[launched] = codec.reduceAsync(group, launched, buckets[launched], dtype);
            launched++;
        }
    }

    @Override
    public void finish() {
        ready(0);
        for (int i = 0; i < inFlight.length; i++) {
            inFlight[i].await();
            inFlight[i] = null;
        }
        launched = 0;
    }
}
