package dev.tessera.worker.parallel;

import dev.tessera.comm.CollectiveHandle;
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
 *
 * <p>Overlapped ({@code moe.overlap}, the FSMoE/Tutel pipeline with one chunk per held expert): the trip is cut
 * into L exchanges, chunk i carrying every rank's rows for the i-th expert of each owner. They run on the group's
 * background thread while held expert i computes on the chunk that has arrived, and each expert's results start
 * back as soon as it is done. A chunk from rank q lands where the whole exchange would have put it (expert-major
 * rows are sender order within an expert), and each expert still runs once on all its rows, so the results are
 * the same bits. The staging memory is chunk-major then ([i][q] blocks), and the results go back through a
 * second symmetric buffer, since the first still holds chunks the peers have not read.
 */
final class ExpertAllToAll implements TokenDispatch {

    private static final String GOING = "expert rows to their experts, in two hops";
    private static final String COMING = "expert results back, in two hops";

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
    private final int[] stagedRow;     // [E] where global expert e's block starts in the staging memory
    private final int[] gatheredRow;   // [E + 1] where its rows start in the gathered layout
    private final boolean overlap;
    private final UnsafeBuffer returned; // [maxRows, C] overlapped: the symmetric buffer results go back from
    private final int[] chunkRow;      // [L + 1] overlapped: chunk i's first row in the staging memory
    private final int[] heldRow;       // [L + 1] held expert i's first row in the expert buffers
    private final long[][] chunkOut;   // [L][ranks] elements of chunk i to each rank
    private final long[][] chunkIn;    // [L][ranks] elements of chunk i from each rank
    private final UnsafeBuffer[] chunkStaged;   // [L] views that stay put while their exchanges run
    private final UnsafeBuffer[] chunkExperts;
    private final UnsafeBuffer[] chunkReturned;
    private final CollectiveHandle[] going;     // [L] chunks on their way to the experts
    private final CollectiveHandle[] coming;    // [L] results on their way back
    private final Runnable[] twoHopGoing;       // [L] the hierarchical exchanges, made once
    private final Runnable[] twoHopComing;
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
     * the hierarchical all-to-all over {@code group}, or null for the flat one; {@code overlap}: a chunk per held
     * expert, each computing while the next arrives.
     */
    ExpertAllToAll(ProcessGroup group, HierarchicalAllToAll twoHop, ExpertShard heldExperts, int dim,
                   DataType dataType, int maxRows, boolean overlap) {
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
        this.stagedRow = new int[ranks * held];
        this.gatheredRow = new int[ranks * held + 1];
        this.overlap = overlap;
        this.returned = overlap ? group.allocateSymmetric(staged.capacity()).buffer() : null;
        this.chunkRow = new int[held + 1];
        this.heldRow = new int[held + 1];
        this.chunkOut = new long[held][ranks];
        this.chunkIn = new long[held][ranks];
        this.chunkStaged = new UnsafeBuffer[held];
        this.chunkExperts = new UnsafeBuffer[held];
        this.chunkReturned = new UnsafeBuffer[held];
        this.going = new CollectiveHandle[held];
        this.coming = new CollectiveHandle[held];
        this.twoHopGoing = new Runnable[held];
        this.twoHopComing = new Runnable[held];
        for (int i = 0; i < held; i++) {
            UnsafeBuffer fromStaging = new UnsafeBuffer(0, 0);
            UnsafeBuffer experts = new UnsafeBuffer(0, 0);
            UnsafeBuffer fromReturned = new UnsafeBuffer(0, 0);
            long[] out = chunkOut[i];
            long[] in = chunkIn[i];
            chunkStaged[i] = fromStaging;
            chunkExperts[i] = experts;
            chunkReturned[i] = fromReturned;
            if (twoHop != null) {
                twoHopGoing[i] = () -> twoHop.allToAll(fromStaging, out, experts, in, dtype);
                twoHopComing[i] = () -> twoHop.allToAll(fromReturned, in, fromStaging, out, dtype);
            }
        }
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
            heldRow[i + 1] = heldRow[i] + rows;
        }
        int staging = 0;
        for (int e = 0; e < sendRows.length; e++) {
            gatheredRow[e + 1] = gatheredRow[e] + rowsPerExpert[e];
            if (!overlap) { // sender-major: each owner's experts in order
                stagedRow[e] = staging;
                staging += sendRows[e];
            }
        }
        for (int i = 0; overlap && i < held; i++) { // chunk-major: chunk i is every owner's i-th expert
            chunkRow[i] = staging;
            for (int q = 0; q < ranks; q++) {
                stagedRow[q * held + i] = staging;
                staging += sendRows[q * held + i];
                chunkOut[i][q] = (long) sendRows[q * held + i] * dim;
                chunkIn[i][q] = (long) recvRows[q * held + i] * dim;
            }
            chunkRow[i + 1] = staging;
        }
        return arrivedRows;
    }

    @Override
    public void roundTrip(INDArray rows, INDArray expertRows, int heldExperts, ExpertStep step,
                          INDArray expertResults, INDArray results) {
        if (overlap) {
            pipelined(rows, expertRows, step, expertResults, results);
            return;
        }
        stage(rows);
        send.wrap(staged, 0, bytes(sentRows));
        wrap(recv, arrived, arrivedRows);
        exchange(sendSplits, recvSplits);
        regroup(arrived, expertRows, true);
        for (int i = 0; i < held; i++) {
            step.run(i);
        }
        regroup(expertResults, null, false); // into the staging memory, sender-major
        send.wrap(staged, 0, bytes(arrivedRows));
        if (capacity == DROPLESS) {
            wrap(recv, results, sentRows);
            exchange(recvSplits, sendSplits);
        } else {
            wrap(recv, arrived, sentRows); // the padded layout comes back, then loses its padding
            exchange(recvSplits, sendSplits);
            wrap(from, arrived, sentRows);
            unstage(from, results);
        }
    }

    /**
     * The trip in chunks: every chunk sets off at once (the group's thread runs them in order), expert i runs when
     * chunk i is in, and its results go back while the next expert runs.
     */
    private void pipelined(INDArray rows, INDArray expertRows, ExpertStep step, INDArray expertResults,
                           INDArray results) {
        stage(rows);
        long expertsAt = NativeMemory.address(expertRows);
        long resultsAt = NativeMemory.address(expertResults);
        for (int i = 0; i < held; i++) {
            chunkStaged[i].wrap(staged, bytes(chunkRow[i]), bytes(chunkRow[i + 1] - chunkRow[i]));
            chunkExperts[i].wrap(expertsAt + bytes(heldRow[i]), bytes(heldRow[i + 1] - heldRow[i]));
            chunkReturned[i].wrap(returned, bytes(heldRow[i]), bytes(heldRow[i + 1] - heldRow[i]));
            going[i] = twoHop == null
                    ? group.allToAllAsync(chunkStaged[i], chunkOut[i], chunkExperts[i], chunkIn[i], dtype)
                    : group.runAsync(GOING, twoHopGoing[i]);
            count(chunkOut[i]);
        }
        for (int i = 0; i < held; i++) {
            await(going[i]);
            step.run(i);
            to.wrap(resultsAt + bytes(heldRow[i]), bytes(heldRow[i + 1] - heldRow[i]));
            chunkReturned[i].putBytes(0, to, 0, to.capacity());
            coming[i] = twoHop == null
                    ? group.allToAllAsync(chunkReturned[i], chunkIn[i], chunkStaged[i], chunkOut[i], dtype)
                    : group.runAsync(COMING, twoHopComing[i]);
            count(chunkIn[i]);
        }
        for (int i = 0; i < held; i++) {
            await(coming[i]);
        }
        unstage(staged, results);
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
        count(out);
    }

    private void await(CollectiveHandle handle) {
        long begin = System.nanoTime();
        handle.await();
        waitedNanos += System.nanoTime() - begin;
    }

    /** Adds what an exchange of these elements per rank sends to the other ranks. */
    private void count(long[] out) {
        for (int q = 0; q < ranks; q++) {
            sentBytes += q == group.rank() ? 0 : out[q] * width;
        }
    }

    /** The gathered rows into the staging memory: each expert's block at its place, padded with zeros to its size. */
    private void stage(INDArray rows) {
        wrap(from, rows, gatheredRow[sendRows.length]);
        for (int e = 0; e < sendRows.length; e++) {
            int at = bytes(stagedRow[e]);
            int real = bytes(rowsPerExpert[e]);
            staged.putBytes(at, from, bytes(gatheredRow[e]), real);
            if (sendRows[e] > rowsPerExpert[e]) {
                staged.setMemory(at + real, bytes(sendRows[e]) - real, (byte) 0);
            }
        }
    }

    /** The reverse of {@link #stage}: each expert's block in {@code source}, without its padding, into results. */
    private void unstage(UnsafeBuffer source, INDArray results) {
        wrap(to, results, gatheredRow[sendRows.length]);
        for (int e = 0; e < sendRows.length; e++) {
            to.putBytes(bytes(gatheredRow[e]), source, bytes(stagedRow[e]), bytes(rowsPerExpert[e]));
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

    private int bytes(int rows) {
        return Math.multiplyExact(Math.multiplyExact(rows, dim), width);
    }

    /** The first {@code rows} rows of {@code a}, as bytes (a view: nothing is allocated). */
    private void wrap(UnsafeBuffer view, INDArray a, int rows) {
        view.wrap(NativeMemory.address(a), bytes(rows));
    }
}
