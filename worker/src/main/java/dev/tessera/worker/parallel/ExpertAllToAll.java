package dev.tessera.worker.parallel;

import dev.tessera.comm.DType;
import dev.tessera.comm.HierarchicalAllToAll;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.SymmetricMemory;
import dev.tessera.optimizers.kernel.NativeMemory;
import dev.tessera.worker.model.ExpertShard;
import dev.tessera.worker.model.TokenDispatch;
import java.util.Arrays;
import org.agrona.concurrent.UnsafeBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Expert parallelism's token exchange over the expert group (ALGORITHMS.md 7.4), for one MoE layer. Rank p of
 * the group holds experts {@code [p L, (p + 1) L)}, so the rows a rank gathered for p's experts are one contiguous
 * block, and one all-to-all takes every block to its owner.
 *
 * <p>Dropless, blocks have their true sizes: the ranks first swap their per-expert counts (a small all-to-all of
 * ints), then the rows go in uneven blocks. With a capacity, every expert's rows are padded to exactly
 * {@code capacity} (zeros), so the exchange is an even all-to-all that needs no counts, and each held expert runs
 * {@code ranks x capacity} rows, padding included; a zero row adds nothing to a SwiGLU expert's output or to its
 * weight gradients. What arrives is sender-major; it is regrouped expert-major (each expert's rows in sender
 * order, which is global token order) for the experts, and back before the return trip.
 *
 * <p>What a rank sends is staged in memory the expert group maps (sized once for the largest exchange the layer
 * can make), so on one host the peers copy their blocks straight out of it. Both exchanges go flat, or in two hops
 * through a {@link HierarchicalAllToAll} ({@code moe.all_to_all: hierarchical}), which delivers the same bytes.
 */
final class ExpertAllToAll implements TokenDispatch {

    private final ProcessGroup group;
    private final HierarchicalAllToAll twoHop; // null: flat
    private final int ranks;
    private final int held;           // L experts per rank
    private final int dim;
    private final DType dtype;
    private final int width;          // bytes per element
    private final int maxRows;        // what the staging memory holds
    private final int[] sendRows;     // [E] rows sent for each global expert (its count, or the capacity)
    private final int[] recvRows;     // [ranks * L] rows from rank q for held expert i, at q * L + i
    private final long[] sendSplits;  // [ranks] elements to each rank
    private final long[] recvSplits;  // [ranks] elements from each rank
    private final UnsafeBuffer countsOut;
    private final UnsafeBuffer countsIn = new UnsafeBuffer(new byte[0]);
    private final UnsafeBuffer staged;  // [maxRows, C] the symmetric send buffer
    private final UnsafeBuffer send = new UnsafeBuffer(0, 0);
    private final UnsafeBuffer recv = new UnsafeBuffer(0, 0);
    private final UnsafeBuffer from = new UnsafeBuffer(0, 0);
    private final UnsafeBuffer to = new UnsafeBuffer(0, 0);
    private int[] rowsPerExpert;      // the layer's gathered rows per expert, as last planned
    private int capacity;
    private int sentRows;
    private int arrivedRows;
    private final INDArray arrived;   // [maxRows, C] what arrives, sender-major
    private long sentBytes;
    private long waitedNanos;

    /**
     * {@code maxRows}: the most rows one exchange can send or receive ({@code MoE.maxExchangeRows}); {@code twoHop}:
     * the hierarchical all-to-all over {@code group}, or null for the flat one.
     */
    ExpertAllToAll(ProcessGroup group, HierarchicalAllToAll twoHop, ExpertShard heldExperts, int dim,
                   DataType dataType, int maxRows) {
        this.group = group;
        this.twoHop = twoHop;
        this.ranks = group.size();
        this.held = heldExperts.count();
        this.dim = dim;
        this.dtype = dataType == DataType.DOUBLE ? DType.FLOAT64 : DType.FLOAT32;
        this.width = dataType.width();
        this.maxRows = maxRows;
        this.sendRows = new int[ranks * held];
        this.recvRows = new int[ranks * held];
        this.sendSplits = new long[ranks];
        this.recvSplits = new long[ranks];
        // Collective allocations: every rank builds its layers in the same order.
        SymmetricMemory counts = group.allocateSymmetric((long) ranks * held * Integer.BYTES);
        this.countsOut = counts.buffer();
        this.countsIn.wrap(new byte[ranks * held * Integer.BYTES]);
        this.arrived = Nd4j.createUninitialized(dataType, Math.max(maxRows, 1), dim);
        this.staged = group.allocateSymmetric(Math.multiplyExact((long) maxRows * dim, width)).buffer();
    }

    @Override
    public boolean movesRows() {
        return true;
    }

    @Override
    public int plan(int[] rowsPerExpert, int capacity, int[] rowsPerHeldExpert) {
        this.rowsPerExpert = rowsPerExpert;
        this.capacity = capacity;
        if (capacity == DROPLESS) {
            for (int e = 0; e < sendRows.length; e++) {
                sendRows[e] = rowsPerExpert[e];
                countsOut.putInt(e * Integer.BYTES, rowsPerExpert[e]);
            }
            long begin = System.nanoTime();
            if (twoHop == null) {
                group.allToAll(countsOut, countsIn, DType.INT32);
            } else {
                twoHop.allToAll(countsOut, countsIn, DType.INT32);
            }
            waitedNanos += System.nanoTime() - begin;
            for (int s = 0; s < recvRows.length; s++) {
                recvRows[s] = countsIn.getInt(s * Integer.BYTES);
            }
        } else {
            Arrays.fill(sendRows, capacity);
            Arrays.fill(recvRows, capacity);
        }
        sentRows = 0;
        arrivedRows = 0;
        for (int q = 0; q < ranks; q++) {
            int out = 0;
            int in = 0;
            for (int i = 0; i < held; i++) {
                out += sendRows[q * held + i];
                in += recvRows[q * held + i];
            }
            sendSplits[q] = (long) out * dim;
            recvSplits[q] = (long) in * dim;
            sentRows += out;
            arrivedRows += in;
        }
        if (Math.max(sentRows, arrivedRows) > maxRows) {
            throw new IllegalStateException("an all-to-all of " + Math.max(sentRows, arrivedRows) + " rows exceeds"
                    + " the " + maxRows + " the layer planned for");
        }
        for (int i = 0; i < held; i++) {
            int rows = 0;
            for (int q = 0; q < ranks; q++) {
                rows += recvRows[q * held + i];
            }
            rowsPerHeldExpert[i] = rows;
        }
        return arrivedRows;
    }

    @Override
    public void toExperts(INDArray rows, INDArray expertRows) {
        stage(rows);
        send.wrap(staged, 0, bytes(sentRows));
        wrap(recv, arrived, arrivedRows);
        exchange(sendSplits, recvSplits);
        regroup(arrived, expertRows, true);
    }

    @Override
    public void fromExperts(INDArray expertRows, INDArray rows) {
        regroup(expertRows, null, false); // into the staging memory, sender-major
        send.wrap(staged, 0, bytes(arrivedRows));
        if (capacity == DROPLESS) {
            wrap(recv, rows, sentRows);
            exchange(recvSplits, sendSplits);
        } else {
            wrap(recv, arrived, sentRows); // the padded layout comes back, then loses its padding
            exchange(recvSplits, sendSplits);
            unpad(rows);
        }
    }

    @Override
    public long sentBytes() {
        return sentBytes;
    }

    @Override
    public long waitedNanos() {
        return waitedNanos;
    }

    /** {@code send} to {@code recv} in blocks of these sizes; what stays on this rank is not counted as sent. */
    private void exchange(long[] out, long[] in) {
        long begin = System.nanoTime();
        if (twoHop == null) {
            group.allToAll(send, out, recv, in, dtype);
        } else {
            twoHop.allToAll(send, out, recv, in, dtype);
        }
        waitedNanos += System.nanoTime() - begin;
        for (int q = 0; q < ranks; q++) {
            sentBytes += q == group.rank() ? 0 : out[q] * width;
        }
    }

    /** The gathered rows into the staging memory: as they are, or each expert's padded to the capacity with zeros. */
    private void stage(INDArray rows) {
        int gathered = gatheredRows();
        wrap(from, rows, gathered);
        if (capacity == DROPLESS) {
            staged.putBytes(0, from, 0, bytes(gathered));
            return;
        }
        int src = 0;
        for (int e = 0; e < sendRows.length; e++) {
            int at = bytes(e * capacity);
            staged.putBytes(at, from, src, bytes(rowsPerExpert[e]));
            staged.setMemory(at + bytes(rowsPerExpert[e]), bytes(capacity - rowsPerExpert[e]), (byte) 0);
            src += bytes(rowsPerExpert[e]);
        }
    }

    /** The padded layout that came back in {@code arrived}, without its padding, into rows. */
    private void unpad(INDArray rows) {
        wrap(from, arrived, sentRows);
        wrap(to, rows, gatheredRows());
        int dst = 0;
        for (int e = 0; e < sendRows.length; e++) {
            to.putBytes(dst, from, bytes(e * capacity), bytes(rowsPerExpert[e]));
            dst += bytes(rowsPerExpert[e]);
        }
    }

    /**
     * Between sender-major ([q][i] blocks, as the all-to-all delivers) and expert-major ([i][q], as the experts
     * run). {@code toExpertMajor}: {@code src} sender-major into {@code dst}; else {@code src} expert-major into
     * the staging memory.
     */
    private void regroup(INDArray src, INDArray dst, boolean toExpertMajor) {
        wrap(from, src, arrivedRows);
        UnsafeBuffer into = staged;
        if (toExpertMajor) {
            wrap(to, dst, arrivedRows);
            into = to;
        }
        int senderMajor = 0;
        for (int q = 0; q < ranks; q++) {
            for (int i = 0; i < held; i++) {
                int expertMajor = 0;
                for (int j = 0; j < held; j++) {
                    for (int p = 0; p < (j < i ? ranks : j == i ? q : 0); p++) {
                        expertMajor += recvRows[p * held + j];
                    }
                }
                int length = bytes(recvRows[q * held + i]);
                if (toExpertMajor) {
                    into.putBytes(bytes(expertMajor), from, bytes(senderMajor), length);
                } else {
                    into.putBytes(bytes(senderMajor), from, bytes(expertMajor), length);
                }
                senderMajor += recvRows[q * held + i];
            }
        }
    }

    private int gatheredRows() {
        int rows = 0;
        for (int r : rowsPerExpert) {
            rows += r;
        }
        return rows;
    }

    private int bytes(int rows) {
        return Math.multiplyExact(Math.multiplyExact(rows, dim), width);
    }

    /** The first {@code rows} rows of {@code a}, as bytes (a view: nothing is allocated). */
    private void wrap(UnsafeBuffer view, INDArray a, int rows) {
        view.wrap(NativeMemory.address(a), bytes(rows));
    }
}
