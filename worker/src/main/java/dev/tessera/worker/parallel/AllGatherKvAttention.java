package dev.tessera.worker.parallel;

import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.ReduceOp;
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
 * The all-gather-K|V scheme (ALGORITHMS.md 8.3, our LSS of 8.1): every rank gathers the whole sequence's keys and
 * values in one fused all-gather, attends its own queries against them under the causal mask of their global
 * positions, and in backward returns each rank the gradients of its keys and values in one fused reduce-scatter
 * (the sum over every rank's queries, which is what makes the scheme exact). Only K|V and their gradients are
 * whole-sequence buffers; the probabilities kept for backward are [B*H, Tl, T].
 *
 * <p>One {@link Exchange} serves every layer of a rank: layers run one at a time, and a symmetric collective
 * returns only when no peer reads its memory any more.
 */
final class AllGatherKvAttention implements SequenceAttention {

    private final Exchange exchange;
    private final AttentionCore core;
    private final INDArray k;  // [B*H, T, D] the whole sequence's keys, kept for backward
    private final INDArray v;  // [B*H, T, D]
    private long waitedNanos;

    private AllGatherKvAttention(Exchange exchange, DataType dt, int bh, int heads, int headDim,
                                 Activations activations) {
        this.exchange = exchange;
        int seq = exchange.runs.seq();
        this.k = activations.array(dt, bh, seq, headDim);
        this.v = activations.array(dt, bh, seq, headDim);
        this.core = new AttentionCore(dt, bh, heads, exchange.positions, seq, headDim, 0,
                dt == DataType.FLOAT ? null : exchange.scores(dt, bh, headDim), activations);
    }

    /**
     * The layers' factory for this rank of {@code group}, whose rank r holds the positions {@code positions[r]}
     * of every sequence.
     */
    static Factory factory(ProcessGroup group, int[][] positions) {
        SequenceRuns runs = new SequenceRuns(positions);
        int[] mine = positions[group.rank()].clone();
        Exchange[] shared = new Exchange[1];
        return (dt, batch, heads, headDim, seq, scores, activations) -> {
            if (seq != runs.local()) {
                throw new IllegalArgumentException("a layer of " + seq + " tokens per sequence on a rank that holds "
                        + runs.local());
            }
            int bh = Math.multiplyExact(batch, heads);
            if (shared[0] == null) {
                shared[0] = new Exchange(group, runs, mine, dt, bh, headDim);
            }
            return new AllGatherKvAttention(shared[0], dt, bh, heads, headDim, activations);
        };
    }

    @Override
    public void forward(INDArray q, INDArray kLocal, INDArray vLocal, INDArray y) {
        waitedNanos += exchange.gather(kLocal, vLocal, k, v);
        core.forward(q, k, v, y);
    }

    @Override
    public void backward(INDArray q, INDArray kLocal, INDArray vLocal, INDArray dy, INDArray dq, INDArray dk,
                         INDArray dv) {
        core.backward(q, k, v, dy, dq, exchange.dk, exchange.dv);
        waitedNanos += exchange.scatter(dk, dv);
    }

    @Override
    public long waitedNanos() {
        return waitedNanos;
    }

    /** The buffers of the two fused collectives, and the whole-sequence gradients, shared by a rank's layers. */
    private static final class Exchange {
        final ProcessGroup group;
        final SequenceRuns runs;
        final int[] positions;
        final DType dtype;
        final int width;
        final int bh;
        final int rowBytes;
        final long half;            // bytes of one [B*H, Tl, D]
        final UnsafeBuffer local;   // symmetric [2, B*H, Tl, D]: this rank's K|V out, its dK|dV back
        final UnsafeBuffer whole;   // symmetric [N, 2, B*H, Tl, D]: every rank's K|V, or dK|dV for every rank
        final INDArray dk;          // [B*H, T, D] this rank's queries' gradients of every key
        final INDArray dv;
        private INDArray scores;    // float64: [B*H, Tl, T] scratch of the attention core

        Exchange(ProcessGroup group, SequenceRuns runs, int[] positions, DataType dt, int bh, int headDim) {
            this.group = group;
            this.runs = runs;
            this.positions = positions;
            this.dtype = dt == DataType.DOUBLE ? DType.FLOAT64 : DType.FLOAT32;
            this.width = dt.width();
            this.bh = bh;
            this.rowBytes = headDim * width;
            this.half = (long) bh * runs.local() * rowBytes;
            this.local = group.allocateSymmetric(2 * half).buffer();
            this.whole = group.allocateSymmetric(2 * half * runs.ranks()).buffer();
            this.dk = Nd4j.createUninitialized(dt, bh, runs.seq(), headDim);
            this.dv = Nd4j.createUninitialized(dt, bh, runs.seq(), headDim);
        }

        INDArray scores(DataType dt, int rows, int headDim) {
            if (scores == null) {
                scores = Nd4j.createUninitialized(dt, rows, runs.local(), runs.seq());
            }
            return scores;
        }

        /** Every rank's K|V into the whole-sequence k, v [B*H, T, D]; returns the nanoseconds of the all-gather. */
        long gather(INDArray kLocal, INDArray vLocal, INDArray k, INDArray v) {
            UnsafeApi.copyMemory(NativeMemory.address(kLocal), local.addressOffset(), half);
            UnsafeApi.copyMemory(NativeMemory.address(vLocal), local.addressOffset() + half, half);
            long begin = System.nanoTime();
            group.allGather(local, whole, dtype);
            long waited = System.nanoTime() - begin;
            for (int r = 0; r < runs.ranks(); r++) {
                long block = whole.addressOffset() + 2 * half * r;
                runs.toWhole(block, r, bh, k, rowBytes);
                runs.toWhole(block + half, r, bh, v, rowBytes);
            }
            return waited;
        }

        /**
         * Each rank's share of dk, dv summed over every rank, into this rank's dk, dv [B*H, Tl, D]; returns the
         * nanoseconds of the reduce-scatter.
         */
        long scatter(INDArray dkLocal, INDArray dvLocal) {
            for (int r = 0; r < runs.ranks(); r++) {
                long block = whole.addressOffset() + 2 * half * r;
                runs.fromWhole(dk, r, bh, block, rowBytes);
                runs.fromWhole(dv, r, bh, block + half, rowBytes);
            }
            long begin = System.nanoTime();
            group.reduceScatter(whole, local, dtype, ReduceOp.SUM);
            long waited = System.nanoTime() - begin;
            UnsafeApi.copyMemory(local.addressOffset(), NativeMemory.address(dkLocal), half);
            UnsafeApi.copyMemory(local.addressOffset() + half, NativeMemory.address(dvLocal), half);
            return waited;
        }
    }
}
