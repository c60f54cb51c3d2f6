package dev.tessera.worker.parallel;

import dev.tessera.comm.CollectiveHandle;
import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.optimizers.kernel.NativeMemory;
import dev.tessera.worker.model.Activations;
import dev.tessera.worker.model.BlockwiseAttention;
import dev.tessera.worker.model.SequenceAttention;
import org.agrona.UnsafeApi;
import org.agrona.concurrent.UnsafeBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Ring attention (ALGORITHMS.md 8.2): each rank keeps its own K|V and passes a block around the sequence-parallel
 * ring N - 1 times; at step j it attends its queries to the block of rank (i - j) mod N, merged into a running
 * (O, log-sum-exp) by {@link BlockwiseAttention}, while the next block is already on its way (sent and received
 * asynchronously, double-buffered). Backward goes round again from the kept O and log-sum-exp, the blocks' dK|dV
 * travelling with them and arriving home after a last hop, each the sum over every rank's queries. Nothing the
 * size of the whole sequence is kept: per layer O(Tl) (O, the log-sum-exp), and one Tl x Tl score scratch.
 */
final class RingKvAttention implements SequenceAttention {

    private final Ring ring;
    private final INDArray o;     // [B*H, Tl, D] the merged output, kept for backward's delta
    private final INDArray lse;   // [B*H, Tl] its log-sum-exp per query row
    private long waitedNanos;

    private RingKvAttention(Ring ring, Activations activations) {
        this.ring = ring;
        this.o = activations.array(ring.dt, ring.bh, ring.local, ring.d);
        this.lse = activations.array(ring.dt, ring.bh, ring.local);
    }

    /** The layers' factory for this rank of {@code group}, whose rank r holds the positions {@code positions[r]}. */
    static Factory factory(ProcessGroup group, int[][] positions) {
        Ring[] shared = new Ring[1];
        return (dt, batch, heads, headDim, seq, scores, activations) -> {
            if (seq != positions[group.rank()].length) {
                throw new IllegalArgumentException("a layer of " + seq + " tokens per sequence on a rank that holds "
                        + positions[group.rank()].length);
            }
            if (shared[0] == null) {
                shared[0] = new Ring(group, positions, dt, Math.multiplyExact(batch, heads), headDim);
            }
            return new RingKvAttention(shared[0], activations);
        };
    }

    @Override
    public void forward(INDArray q, INDArray k, INDArray v, INDArray y) {
        BlockwiseAttention.start(o, lse);
        Ring r = ring;
        r.load(k, v, r.current);
        for (int step = 0; step < r.ranks; step++) {
            int source = Math.floorMod(r.rank - step, r.ranks);
            boolean more = step < r.ranks - 1;
            if (more) {
                r.pass(r.current, r.next, 2);
            }
            r.kernel.forward(q, r.positions[r.rank], r.k(r.current), r.v(r.current), r.positions[source], o, lse);
            if (more) {
                waitedNanos += r.arrive();
                r.swap();
            }
        }
        y.assign(o);
    }

    @Override
    public void backward(INDArray q, INDArray k, INDArray v, INDArray dy, INDArray dq, INDArray dk, INDArray dv) {
        Ring r = ring;
        BlockwiseAttention.delta(dy, o, r.delta);
        dq.assign(0);
        r.load(k, v, r.current);
        r.dk(r.current).assign(0);
        r.dv(r.current).assign(0);
        for (int step = 0; step < r.ranks; step++) {
            int source = Math.floorMod(r.rank - step, r.ranks);
            r.kernel.backward(q, r.positions[r.rank], r.k(r.current), r.v(r.current), r.positions[source], dy,
                    r.delta, lse, dq, r.dk(r.current), r.dv(r.current));
            // The block and its gradients move on; after the last step the gradients go home to their owner, i + 1.
            if (r.ranks > 1) {
                r.pass(r.current, r.next, 4);
                waitedNanos += r.arrive();
                r.swap();
            }
        }
        dk.assign(r.dk(r.current));
        dv.assign(r.dv(r.current));
    }

    @Override
    public long waitedNanos() {
        return waitedNanos;
    }

    /** The travelling buffers and the block kernel's scratch, shared by a rank's layers (they run one at a time). */
    private static final class Ring {
        final ProcessGroup group;
        final int[][] positions;
        final int rank;
        final int ranks;
        final DataType dt;
        final int bh;
        final int local;
        final int d;
        final INDArray[] buffers = new INDArray[2]; // [4, B*H, Tl, D] each: K, V, dK, dV
        final INDArray[][] parts = new INDArray[2][4];
        final UnsafeBuffer outgoing = new UnsafeBuffer(0, 0);
        final UnsafeBuffer incoming = new UnsafeBuffer(0, 0);
        final BlockwiseAttention kernel;
        final INDArray delta;                        // [B*H, Tl]
        int current = 0;
        int next = 1;
        final long[] sendSplits;
        final long[] recvSplits;
        final DType dtype;
        private CollectiveHandle moving;

        Ring(ProcessGroup group, int[][] positions, DataType dt, int bh, int d) {
            this.group = group;
            this.positions = positions;
            this.rank = group.rank();
            this.ranks = group.size();
            this.dt = dt;
            this.bh = bh;
            this.local = positions[rank].length;
            this.d = d;
            for (int b = 0; b < 2; b++) {
                buffers[b] = Nd4j.create(dt, 4, bh, local, d);
                for (int p = 0; p < 4; p++) {
                    parts[b][p] = buffers[b].slice(p);
                }
            }
            this.kernel = new BlockwiseAttention(dt, bh, local, local, d);
            this.delta = Nd4j.createUninitialized(dt, bh, local);
            this.sendSplits = new long[ranks];
            this.recvSplits = new long[ranks];
            this.dtype = dt == DataType.DOUBLE ? DType.FLOAT64 : DType.FLOAT32;
        }

        INDArray k(int b) {
            return parts[b][0];
        }

        INDArray v(int b) {
            return parts[b][1];
        }

        INDArray dk(int b) {
            return parts[b][2];
        }

        INDArray dv(int b) {
            return parts[b][3];
        }

        /** This rank's own K and V into buffer b. */
        void load(INDArray k, INDArray v, int b) {
            long bytes = (long) bh * local * d * dt.width();
            UnsafeApi.copyMemory(NativeMemory.address(k), NativeMemory.address(k(b)), bytes);
            UnsafeApi.copyMemory(NativeMemory.address(v), NativeMemory.address(v(b)), bytes);
        }

        /**
         * Starts moving the first {@code parts} parts of buffer {@code from} to the right neighbour, and the left
         * neighbour's into {@code into}: one all-to-all whose only blocks are those two, so every rank's send and
         * receive are one operation (a receive queued before a send on every rank of a ring would wait forever). It
         * runs on the group's thread while this one computes.
         */
        void pass(int from, int into, int parts) {
            long elements = (long) parts * bh * local * d;
            int bytes = Math.toIntExact(elements * dt.width());
            outgoing.wrap(NativeMemory.address(buffers[from]), bytes);
            incoming.wrap(NativeMemory.address(buffers[into]), bytes);
            java.util.Arrays.fill(sendSplits, 0);
            java.util.Arrays.fill(recvSplits, 0);
            sendSplits[Math.floorMod(rank + 1, ranks)] = elements;
            recvSplits[Math.floorMod(rank - 1, ranks)] = elements;
            moving = group.allToAllAsync(outgoing, sendSplits, incoming, recvSplits, dtype);
        }

        /** Waits for the block in flight; returns the nanoseconds waited. */
        long arrive() {
            long begin = System.nanoTime();
            moving.await();
            return System.nanoTime() - begin;
        }

        void swap() {
            int t = current;
            current = next;
            next = t;
        }
    }
}
