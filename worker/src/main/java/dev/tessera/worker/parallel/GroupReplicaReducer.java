package dev.tessera.worker.parallel;

import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.ReduceOp;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.agrona.concurrent.UnsafeBuffer;

/** {@link ReplicaReducer} over a process group: one small float64 all-reduce (recursive doubling) per call. */
public final class GroupReplicaReducer implements ReplicaReducer {

    private static final int MAX_VALUES = 4096;

    private final ProcessGroup group;
    private final ByteBuffer direct = ByteBuffer.allocateDirect(MAX_VALUES * Double.BYTES).order(ByteOrder.nativeOrder());
    private final UnsafeBuffer[] views = new UnsafeBuffer[MAX_VALUES + 1];

    public GroupReplicaReducer(ProcessGroup group) {
        this.group = group;
    }

    @Override
    public void sumInPlace(double[] values) {
        int n = values.length;
        if (n > MAX_VALUES) {
            throw new IllegalArgumentException(n + " values exceed the " + MAX_VALUES + " a replica reduction takes");
        }
        UnsafeBuffer view = views[n];
        if (view == null) {
            view = new UnsafeBuffer(direct, 0, n * Double.BYTES);
            views[n] = view;
        }
        for (int i = 0; i < n; i++) {
            view.putDouble(i * Double.BYTES, values[i]);
        }
        group.allReduce(view, DType.FLOAT64, ReduceOp.SUM);
        for (int i = 0; i < n; i++) {
            values[i] = view.getDouble(i * Double.BYTES);
        }
    }
}
