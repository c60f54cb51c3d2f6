package dev.tessera.worker.parallel;

import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.optimizers.kernel.NativeMemory;
import dev.tessera.worker.model.Activations;
import dev.tessera.worker.model.AttentionCore;
import dev.tessera.worker.model.SequenceAttention;
import org.agrona.UnsafeApi;
import org.agrona.concurrent.UnsafeBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * DeepSpeed-Ulysses (ALGORITHMS.md 8.4): an all-to-all turns this rank's tokens of every head into every token of
 * H/N heads, ordinary causal attention runs over the whole sequence for those heads, and a second all-to-all turns
 * the output back. Backward sends dY the first way and dQ, dK, dV the second. Attention itself is local and exact;
 * the cost is four all-to-alls a layer, each of a 1/N of the rank's q|k|v, and the probabilities kept for backward
 * are [B*H/N, T, T].
 *
 * <p>Head h lives on rank h / (H/N). Before an exchange the rows of each destination are packed as
 * {@code [tensor][batch][head][Tl][D]}, so one even all-to-all moves them all; what arrives from rank s is its
 * positions of those rows, put into the whole sequence by {@link SequenceRuns}.
 */
final class UlyssesAttention implements SequenceAttention {

    private final Exchange exchange;
    private final AttentionCore core;
    private final INDArray[] kept;   // q, k, v of every token of this rank's heads, [B*H/N, T, D] each
    private final INDArray[] in = new INDArray[3];   // the tensors of the next exchange, set per call
    private final INDArray[] out = new INDArray[3];
    private final INDArray[] one = new INDArray[1];
    private final INDArray[] oneOut = new INDArray[1];
    private long waitedNanos;

    private UlyssesAttention(Exchange exchange, DataType dt, Activations activations) {
        this.exchange = exchange;
        int rows = exchange.batch * exchange.headsHere;
        int seq = exchange.runs.seq();
        this.kept = new INDArray[] {activations.array(dt, rows, seq, exchange.headDim),
                activations.array(dt, rows, seq, exchange.headDim), activations.array(dt, rows, seq, exchange.headDim)};
        this.core = new AttentionCore(dt, rows, exchange.headsHere, seq, seq, exchange.headDim, 0, 0,
                dt == DataType.FLOAT ? null : exchange.scores(), activations);
    }

    /**
     * The layers' factory for this rank of {@code group}, whose rank r holds the positions {@code positions[r]}.
     *
     * @throws IllegalArgumentException unless the group's size divides the heads
     */
    static Factory factory(ProcessGroup group, int[][] positions) {
        SequenceRuns runs = new SequenceRuns(positions);
        Exchange[] shared = new Exchange[1];
        return (dt, batch, heads, headDim, seq, scores, activations) -> {
            if (heads % group.size() != 0) {
                throw new IllegalArgumentException("Ulysses needs n_heads (" + heads + ") divisible by the "
                        + group.size() + " sequence-parallel ranks");
            }
            if (seq != runs.local()) {
                throw new IllegalArgumentException("a layer of " + seq + " tokens per sequence on a rank that holds "
                        + runs.local());
            }
            if (shared[0] == null) {
                shared[0] = new Exchange(group, runs, dt, batch, heads, headDim);
            }
            return new UlyssesAttention(shared[0], dt, activations);
        };
    }

    @Override
    public void forward(INDArray q, INDArray k, INDArray v, INDArray y) {
        in[0] = q;
        in[1] = k;
        in[2] = v;
        waitedNanos += exchange.toHeads(in, kept);
        core.forward(kept[0], kept[1], kept[2], exchange.whole[0]);
        one[0] = exchange.whole[0];
        oneOut[0] = y;
        waitedNanos += exchange.toTokens(one, oneOut);
    }

    @Override
    public long waitedNanos() {
        return waitedNanos;
    }

    @Override
    public void backward(INDArray q, INDArray k, INDArray v, INDArray dy, INDArray dq, INDArray dk, INDArray dv) {
        one[0] = dy;
        waitedNanos += exchange.toHeads(one, exchange.whole);
        INDArray[] w = exchange.whole;
        core.backward(kept[0], kept[1], kept[2], w[0], w[1], w[2], w[3]);
        in[0] = w[1];
        in[1] = w[2];
        in[2] = w[3];
        out[0] = dq;
        out[1] = dk;
        out[2] = dv;
        waitedNanos += exchange.toTokens(in, out);
    }

    /** The exchange buffers and the whole-sequence scratch, shared by a rank's layers. */
    private static final class Exchange {
        final ProcessGroup group;
        final SequenceRuns runs;
        final DType dtype;
        final int batch;
        final int heads;
        final int headsHere;      // H/N
        final int headDim;
        final int rowBytes;       // one token of one head
        final long headBytes;     // one head of one sequence on one rank: [Tl, D]
        final UnsafeBuffer send;  // symmetric [N][3][B][H/N][Tl][D]
        final INDArray received;  // [N][3][B][H/N][Tl][D] bytes
        final UnsafeBuffer recv;  // over received
        final UnsafeBuffer sendView = new UnsafeBuffer(0, 0);
        final UnsafeBuffer recvView = new UnsafeBuffer(0, 0);
        final INDArray[] whole;   // [B*H/N, T, D] x 4: y or dY, then dQ, dK, dV (whole[0] free after the core)
        private INDArray scores;  // float64: [B*H/N, T, T]

        Exchange(ProcessGroup group, SequenceRuns runs, DataType dt, int batch, int heads, int headDim) {
            this.group = group;
            this.runs = runs;
            this.dtype = dt == DataType.DOUBLE ? DType.FLOAT64 : DType.FLOAT32;
            this.batch = batch;
            this.heads = heads;
            this.headsHere = heads / group.size();
            this.headDim = headDim;
            this.rowBytes = headDim * dt.width();
            this.headBytes = (long) runs.local() * rowBytes;
            long bytes = 3L * batch * heads * headBytes;
            this.send = group.allocateSymmetric(bytes).buffer();
            this.received = Nd4j.createUninitialized(DataType.BYTE, bytes);
            this.recv = new UnsafeBuffer(NativeMemory.address(received), Math.toIntExact(bytes));
            this.whole = new INDArray[4];
            for (int i = 0; i < whole.length; i++) {
                whole[i] = Nd4j.createUninitialized(dt, (long) batch * headsHere, runs.seq(), headDim);
            }
        }

        INDArray scores() {
            if (scores == null) {
                scores = Nd4j.createUninitialized(whole[0].dataType(), (long) batch * headsHere, runs.seq(),
                        runs.seq());
            }
            return scores;
        }

        /** Tensors [B*H, Tl, D] of this rank's tokens -> [B*H/N, T, D] of this rank's heads, into {@code out}. */
        long toHeads(INDArray[] tensors, INDArray[] out) {
            int count = tensors.length;
            long block = count * (long) batch * headsHere * headBytes; // bytes for one destination rank
            for (int r = 0; r < group.size(); r++) {
                for (int x = 0; x < count; x++) {
                    long src = NativeMemory.address(tensors[x]);
                    for (int b = 0; b < batch; b++) {
                        long from = src + ((long) b * heads + (long) r * headsHere) * headBytes;
                        long to = send.addressOffset() + r * block + ((long) x * batch + b) * headsHere * headBytes;
                        UnsafeApi.copyMemory(from, to, headsHere * headBytes);
                    }
                }
            }
            long waited = exchange(block);
            for (int s = 0; s < group.size(); s++) {
                for (int x = 0; x < count; x++) {
                    long at = recv.addressOffset() + s * block + (long) x * batch * headsHere * headBytes;
                    runs.toWhole(at, s, batch * headsHere, out[x], rowBytes);
                }
            }
            return waited;
        }

        /** Tensors [B*H/N, T, D] of this rank's heads ({@code from}) -> [B*H, Tl, D] of its tokens ({@code to}). */
        long toTokens(INDArray[] from, INDArray[] to) {
            int count = from.length;
            long block = count * (long) batch * headsHere * headBytes;
            for (int s = 0; s < group.size(); s++) {
                for (int x = 0; x < count; x++) {
                    long at = send.addressOffset() + s * block + (long) x * batch * headsHere * headBytes;
                    runs.fromWhole(from[x], s, batch * headsHere, at, rowBytes);
                }
            }
            long waited = exchange(block);
            for (int r = 0; r < group.size(); r++) {
                for (int x = 0; x < count; x++) {
                    long dst = NativeMemory.address(to[x]);
                    for (int b = 0; b < batch; b++) {
                        long src = recv.addressOffset() + r * block + ((long) x * batch + b) * headsHere * headBytes;
                        UnsafeApi.copyMemory(src, dst + ((long) b * heads + (long) r * headsHere) * headBytes,
                                headsHere * headBytes);
                    }
                }
            }
            return waited;
        }

        /** One even all-to-all of the first {@code block} x N bytes of send into recv; returns its nanoseconds. */
        private long exchange(long block) {
            int bytes = Math.toIntExact(block * group.size());
            sendView.wrap(send, 0, bytes);
            recvView.wrap(recv, 0, bytes);
            long begin = System.nanoTime();
            group.allToAll(sendView, recvView, dtype);
            return System.nanoTime() - begin;
        }
    }
}
