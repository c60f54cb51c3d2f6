package dev.tessera.worker.model;

import dev.tessera.optimizers.kernel.KernelThreads;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * attend(q, k, v): softmax(q k^T / sqrt(D) + causal mask) v, per (batch, head). Kept apart from the
 * projections so sequence parallelism can feed it remote K/V blocks: the mask is by absolute position,
 * key j visible to query i iff {@code kPos0 + j <= qPos[i]}, the query positions ascending (one run, or the two
 * zig-zag chunks a sequence-parallel rank holds).
 *
 * <p>float32 runs {@link FusedAttention}, one (batch, head) per task over {@link KernelThreads} threads, which
 * skips the masked triangle. float64 (gradient checks, and the reference the fused kernel is tested
 * against) goes through 3-D {@code Nd4j.matmul} (BatchMmul is broken in M2.1) with one fused softmax pass
 * per row that only touches the visible prefix of the row.
 */
public final class AttentionCore implements SequenceAttention {
    private static final int KERNEL = ModelStepTimer.kernel("attn.core");
    /** Floats per scratch array of a token-major work unit (256 KB): bounds how many heads one unit takes. */
    private static final int BLOCK_FLOATS = 1 << 16;

    private final int bh;
    private final int heads;
    private final int blockHeads; // heads per token-major work unit
    private final int tq;
    private final int tk;
    private final int d;
    private final int[] qPos; // [Tq] ascending
    private final int kPos0;
    private final double scale;
    private final INDArray p;       // float64: [BH, Tq, Tk] probabilities, kept for backward
    private final INDArray scratch; // float64: [BH, Tq, Tk] scores forward, dP / dS backward; may be shared
    private final float[] pf;       // float32: [BH, Tq, tkp] probabilities (FusedAttention's layout)
    private final FusedAttention[] kernels; // float32: one per KernelThreads part

    /**
     * @param heads   heads per batch row (bh = batch * heads); the token-major entry points work in blocks of them
     * @param scratch a [bh, tq, tk] buffer this core may overwrite freely, or null to allocate one
     */
    public AttentionCore(DataType dt, int bh, int heads, int tq, int tk, int d, int qPos0, int kPos0,
                         INDArray scratch) {
        this(dt, bh, heads, tq, tk, d, qPos0, kPos0, scratch, Activations.own());
    }

    /** As above, the probabilities kept for backward from {@code activations}. */
    public AttentionCore(DataType dt, int bh, int heads, int tq, int tk, int d, int qPos0, int kPos0,
                         INDArray scratch, Activations activations) {
        this(dt, bh, heads, tq, tk, d, qPos0, kPos0, scratch,
                tq == tk && qPos0 == kPos0
                        ? blockHeads(heads, bh / Math.max(1, heads), tq, d, KernelThreads.THREADS) : 1,
                activations);
    }

    /** As above with the heads per token-major work unit given (tests: results must not depend on it). */
    AttentionCore(DataType dt, int bh, int heads, int tq, int tk, int d, int qPos0, int kPos0, INDArray scratch,
                  int blockHeads) {
        this(dt, bh, heads, tq, tk, d, qPos0, kPos0, scratch, blockHeads, Activations.own());
    }

    private AttentionCore(DataType dt, int bh, int heads, int tq, int tk, int d, int qPos0, int kPos0,
                          INDArray scratch, int blockHeads, Activations activations) {
        this(dt, bh, heads, SequenceShard.run(qPos0, tq), tk, d, kPos0, scratch, blockHeads, activations);
    }

    /**
     * Queries at the ascending global positions {@code qPos} (the same in every (batch, head) row) against
     * {@code tk} keys from position {@code kPos0}: a sequence-parallel rank's tokens against the whole sequence.
     */
    public AttentionCore(DataType dt, int bh, int heads, int[] qPos, int tk, int d, int kPos0, INDArray scratch,
                         Activations activations) {
        this(dt, bh, heads, qPos.clone(), tk, d, kPos0, scratch, 1, activations);
    }

    private AttentionCore(DataType dt, int bh, int heads, int[] qPos, int tk, int d, int kPos0, INDArray scratch,
                          int blockHeads, Activations activations) {
        int tq = qPos.length;
        if (heads < 1 || bh % heads != 0) {
            throw new IllegalArgumentException(bh + " (batch, head) items are not whole rows of " + heads + " heads");
        }
        this.bh = bh;
        this.heads = heads;
        this.blockHeads = blockHeads;
        this.tq = tq;
        this.tk = tk;
        this.d = d;
        this.qPos = qPos;
        this.kPos0 = kPos0;
        this.scale = 1.0 / Math.sqrt(d);
        if (dt == DataType.FLOAT) {
            this.p = null;
            this.scratch = null;
            this.pf = activations.floats(Math.multiplyExact(Math.multiplyExact(bh, tq), FusedAttention.paddedKeys(tk)));
            this.kernels = new FusedAttention[KernelThreads.THREADS];
            for (int i = 0; i < kernels.length; i++) {
                kernels[i] = new FusedAttention(qPos, tk, d, kPos0, blockHeads, activations);
            }
        } else {
            this.p = activations.array(dt, bh, tq, tk);
            this.scratch = scratch != null ? scratch : Nd4j.create(dt, bh, tq, tk);
            this.pf = null;
            this.kernels = null;
        }
    }

    /**
     * As many heads as keep each scratch array within BLOCK_FLOATS, and at least one unit per thread
     * ({@code threads}: the process's {@link KernelThreads#THREADS}; planning passes a worker's).
     */
    public static int blockHeads(int heads, int batch, int t, int d, int threads) {
        int fit = Math.max(1, BLOCK_FLOATS / (t * d));
        int perThread = Math.max(1, (batch * heads + threads - 1) / threads);
        return Math.min(heads, Math.min(fit, perThread));
    }

    /** The row stride of the float32 probabilities kept for backward: {@code tk} rounded up to whole vectors. */
    public static int paddedKeys(int tk) {
        return FusedAttention.paddedKeys(tk);
    }

    /** Whether the token-major entry points (float32 self-attention) are available. */
    public boolean fusedTokenMajor() {
        return kernels != null && tq == tk && tq > 0 && qPos[0] == kPos0 && qPos[tq - 1] == kPos0 + tq - 1;
    }

    /**
     * float32 self-attention from a fused projection: qkv [B*T, 3C] (q, k unrotated) -> y [B*T, C]
     * (overwritten). RoPE and the head-major permutes happen inside the kernel, a block of heads of one batch
     * row per work unit.
     */
    public void forwardTokenMajor(INDArray qkv, Rope rope, INDArray y) {
        requireTokenMajor();
        long t = ModelStepTimer.startKernel();
        Mem qm = new Mem(qkv);
        Mem ym = new Mem(y);
        int blocks = (heads + blockHeads - 1) / blockHeads;
        KernelThreads.forRange(bh / heads * blocks, (part, from, to) -> {
            for (int u = from; u < to; u++) {
                int h0 = u % blocks * blockHeads;
                kernels[part].forwardTokenMajor(u / blocks, h0, Math.min(heads, h0 + blockHeads), heads, qm, rope,
                        ym, pf);
            }
        });
        ModelStepTimer.stopKernel(KERNEL, t);
    }

    /** The backward of {@link #forwardTokenMajor}: dy [B*T, C] -> dqkv [B*T, 3C] (overwritten). */
    public void backwardTokenMajor(INDArray qkv, Rope rope, INDArray dy, INDArray dqkv) {
        requireTokenMajor();
        long t = ModelStepTimer.startKernel();
        Mem qm = new Mem(qkv);
        Mem dym = new Mem(dy);
        Mem dm = new Mem(dqkv);
        int blocks = (heads + blockHeads - 1) / blockHeads;
        KernelThreads.forRange(bh / heads * blocks, (part, from, to) -> {
            for (int u = from; u < to; u++) {
                int h0 = u % blocks * blockHeads;
                kernels[part].backwardTokenMajor(u / blocks, h0, Math.min(heads, h0 + blockHeads), heads, qm, rope,
                        dym, dm, pf);
            }
        });
        ModelStepTimer.stopKernel(KERNEL, t);
    }

    private void requireTokenMajor() {
        if (!fusedTokenMajor()) {
            throw new IllegalStateException("token-major attention needs float32 self-attention");
        }
    }

    /** Number of keys query row i may see. */
    private int visible(int i) {
        return Math.max(0, Math.min(tk, qPos[i] - kPos0 + 1));
    }

    /** q: [BH, Tq, D], k, v: [BH, Tk, D] -> y: [BH, Tq, D] (overwritten). */
    @Override
    public void forward(INDArray q, INDArray k, INDArray v, INDArray y) {
        long t = ModelStepTimer.startKernel();
        forwardHeadMajor(q, k, v, y);
        ModelStepTimer.stopKernel(KERNEL, t);
    }

    private void forwardHeadMajor(INDArray q, INDArray k, INDArray v, INDArray y) {
        if (kernels != null) {
            Mem qm = new Mem(q);
            Mem km = new Mem(k);
            Mem vm = new Mem(v);
            Mem ym = new Mem(y);
            KernelThreads.forRange(bh, (part, from, to) -> {
                for (int z = from; z < to; z++) {
                    kernels[part].forward(z, qm, km, vm, ym, pf);
                }
            });
            return;
        }
        Nd4j.matmul(q, k, scratch, false, true, false);
        Mem s = new Mem(scratch);
        Mem pm = new Mem(p);
        for (int r = 0; r < bh * tq; r++) {
            softmaxRow(s, pm, r * tk, visible(r % tq));
        }
        Nd4j.matmul(p, v, y, false, false, false);
    }

    /**
     * dy: [BH, Tq, D] -> dq: [BH, Tq, D], dk, dv: [BH, Tk, D] (all overwritten). q, k, v must be the last
     * forward's inputs (P is reused, not recomputed).
     */
    @Override
    public void backward(INDArray q, INDArray k, INDArray v, INDArray dy, INDArray dq, INDArray dk, INDArray dv) {
        long t = ModelStepTimer.startKernel();
        backwardHeadMajor(q, k, v, dy, dq, dk, dv);
        ModelStepTimer.stopKernel(KERNEL, t);
    }

    private void backwardHeadMajor(INDArray q, INDArray k, INDArray v, INDArray dy, INDArray dq, INDArray dk,
                                   INDArray dv) {
        if (kernels != null) {
            Mem qm = new Mem(q);
            Mem km = new Mem(k);
            Mem vm = new Mem(v);
            Mem dym = new Mem(dy);
            Mem dqm = new Mem(dq);
            Mem dkm = new Mem(dk);
            Mem dvm = new Mem(dv);
            KernelThreads.forRange(bh, (part, from, to) -> {
                for (int z = from; z < to; z++) {
                    kernels[part].backward(z, qm, km, vm, dym, dqm, dkm, dvm, pf);
                }
            });
            return;
        }
        Nd4j.matmul(p, dy, dv, true, false, false);      // dV = P^T dY
        Nd4j.matmul(dy, v, scratch, false, true, false); // dP = dY V^T
        Mem ds = new Mem(scratch);
        Mem pm = new Mem(p);
        for (int r = 0; r < bh * tq; r++) {
            softmaxBackwardRow(pm, ds, r * tk, visible(r % tq));
        }
        Nd4j.matmul(ds.arr, k, dq, false, false, false); // dQ = dS K
        Nd4j.matmul(ds.arr, q, dk, true, false, false);  // dK = dS^T Q
    }

    /** p[o..o+tk) = softmax(scale * s[o..o+n)) on the visible prefix n, 0 on the masked rest (float64). */
    private void softmaxRow(Mem s, Mem pm, int o, int n) {
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) {
            max = Math.max(max, s.get(o + j));
        }
        double sum = 0;
        for (int j = 0; j < n; j++) {
            double e = Math.exp((s.get(o + j) - max) * scale);
            pm.set(o + j, e);
            sum += e;
        }
        for (int j = 0; j < n; j++) {
            pm.set(o + j, pm.get(o + j) / sum);
        }
        for (int j = n; j < tk; j++) {
            pm.set(o + j, 0);
        }
    }

    /** In place: ds = scale * P * (dP - sum(P * dP)) on the visible prefix, 0 on the masked rest (float64). */
    private void softmaxBackwardRow(Mem pm, Mem ds, int o, int n) {
        double dot = Mem.dot(pm, o, ds, o, n, null); // float64: no lanes needed
        for (int j = 0; j < n; j++) {
            ds.set(o + j, pm.get(o + j) * (ds.get(o + j) - dot) * scale);
        }
        for (int j = n; j < tk; j++) {
            ds.set(o + j, 0);
        }
    }
}
