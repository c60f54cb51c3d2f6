package dev.tessera.worker.train;

import dev.tessera.comm.CollectiveHandle;
import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.ReduceOp;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * A {@link DeferredSum} over a process group: a float64 all-reduce on the group's background thread. The group
 * must be a channel of its own, since its operation is in flight while the step's collectives run.
 */
public final class GroupDeferredSum implements DeferredSum {

    private final ProcessGroup group;
    private final UnsafeBuffer value = new UnsafeBuffer(ByteBuffer.allocateDirect(Double.BYTES)
            .order(ByteOrder.nativeOrder()));
    private CollectiveHandle inFlight;

    public GroupDeferredSum(ProcessGroup group) {
        this.group = group;
    }

    @Override
    public void start(double v) {
        if (inFlight != null) {
            throw new IllegalStateException("a sum over group '" + group.name() + "' is still in flight");
        }
        value.putDouble(0, v);
        inFlight = group.allReduceAsync(value, DType.FLOAT64, ReduceOp.SUM);
    }

    @Override
    public double await() {
        if (inFlight == null) {
            throw new IllegalStateException("no sum over group '" + group.name() + "' was started");
        }
        CollectiveHandle handle = inFlight;
        inFlight = null;
        handle.await();
        return value.getDouble(0);
    }
}
