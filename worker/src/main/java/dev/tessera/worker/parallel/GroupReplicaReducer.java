package dev.tessera.worker.parallel;

import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.ReduceOp;
import dev.tessera.optimizers.ShardReducer;
import dev.tessera.worker.model.ReplicaReducer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * {@link ReplicaReducer} and {@link ShardReducer} over a process group: one float64 all-reduce per call
 * (recursive doubling while small). The direct buffer grows to the largest vector seen and is then reused, so
 * a training step allocates nothing here.
 */
public final class GroupReplicaReducer implements ReplicaReducer, ShardReducer {

    private final ProcessGroup group;
    private final UnsafeBuffer view = new UnsafeBuffer(new byte[0]);
    private ByteBuffer direct = ByteBuffer.allocateDirect(0);

    public GroupReplicaReducer(ProcessGroup group) {
        this.group = group;
    }

    @Override
    public void sumInPlace(double[] values) {
        sumInPlace(values, values.length);
    }

    @Override
    public void sumInPlace(double[] values, int length) {
        int bytes = length * Double.BYTES;
        if (direct.capacity() < bytes) {
            direct = ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
        }
        view.wrap(direct, 0, bytes);
        for (int i = 0; i < length; i++) {
            view.putDouble(i * Double.BYTES, values[i]);
        }
        group.allReduce(view, DType.FLOAT64, ReduceOp.SUM);
        for (int i = 0; i < length; i++) {
            values[i] = view.getDouble(i * Double.BYTES);
        }
    }
}
