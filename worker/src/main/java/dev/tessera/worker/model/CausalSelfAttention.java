package dev.tessera.worker.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Multi-head causal self-attention: q, k, v, o projections without bias, RoPE on q and k, then
 * {@link AttentionCore}. Activations for one (batch, seq) shape are allocated once here.
 */
public final class CausalSelfAttention {
    private final Linear wq;
    private final Linear wk;
    private final Linear wv;
    private final Linear wo;
    private final Rope rope;
    private final AttentionCore core;
    private final int batch;
    private final int seq;
    private final int heads;
    private final int headDim;
    private final INDArray qh;  // [B*H, T, D] rotated queries
    private final INDArray kh;  // [B*H, T, D] rotated keys
    private final INDArray vh;  // [B*H, T, D]
    private final INDArray yh;  // [B*H, T, D] attention output, head-major
    private final INDArray y;   // [B*T, C] the same, token-major: o_proj's input
    private final INDArray tmp; // [B*T, C] projection outputs / their grads before the permute
    private final INDArray dqh; // [B*H, T, D]
    private final INDArray dkh; // [B*H, T, D]
    private final INDArray dvh; // [B*H, T, D]

    /**
     * @param prefix e.g. {@code model.layers.3.self_attn}
     * @param scoresScratch a [B*H, T, T] buffer layers may share, or null
     */
    public CausalSelfAttention(ParameterStore ps, String prefix, ModelConfig cfg, int batch, int seq,
                               int positionOffset, INDArray scoresScratch) {
        DataType dt = ps.dataType();
        this.wq = new Linear(ps, prefix + ".q_proj.weight");
        this.wk = new Linear(ps, prefix + ".k_proj.weight");
        this.wv = new Linear(ps, prefix + ".v_proj.weight");
        this.wo = new Linear(ps, prefix + ".o_proj.weight");
        this.batch = batch;
        this.seq = seq;
        this.heads = cfg.nHeads();
        this.headDim = cfg.headDim();
        if (headDim * heads != cfg.dModel()) {
            throw new IllegalArgumentException("d_model " + cfg.dModel() + " is not divisible by n_heads " + heads);
        }
        this.rope = new Rope(headDim, cfg.ropeTheta(), seq, positionOffset);
        this.core = new AttentionCore(dt, batch * heads, seq, seq, headDim, positionOffset, positionOffset,
                scoresScratch);
        int bh = batch * heads;
        long n = (long) batch * seq;
        qh = Nd4j.create(dt, bh, seq, headDim);
        kh = Nd4j.create(dt, bh, seq, headDim);
        vh = Nd4j.create(dt, bh, seq, headDim);
        yh = Nd4j.create(dt, bh, seq, headDim);
        y = Nd4j.create(dt, n, cfg.dModel());
        tmp = Nd4j.create(dt, n, cfg.dModel());
        dqh = Nd4j.create(dt, bh, seq, headDim);
        dkh = Nd4j.create(dt, bh, seq, headDim);
        dvh = Nd4j.create(dt, bh, seq, headDim);
    }

    public static void register(ParameterStore.Builder b, String prefix, int dModel) {
        for (String p : new String[] {"q", "k", "v", "o"}) {
            b.add(prefix + "." + p + "_proj.weight", dModel, dModel);
        }
    }

    /** x: [B*T, C]; out: [B*T, C] += Attn(x) (the block pre-fills out with the residual). */
    public void forward(INDArray x, INDArray out) {
        long t = ModelStepTimer.start();
        wq.forward(x, tmp, false);
        t = ModelStepTimer.stop("attn.proj.fwd", t);
        rope.forward(tmp, qh, batch, heads);
        t = ModelStepTimer.stop("attn.rope.fwd", t);
        wk.forward(x, tmp, false);
        t = ModelStepTimer.stop("attn.proj.fwd", t);
        rope.forward(tmp, kh, batch, heads);
        t = ModelStepTimer.stop("attn.rope.fwd", t);
        wv.forward(x, tmp, false);
        t = ModelStepTimer.stop("attn.proj.fwd", t);
        Rope.permute(tmp, vh, batch, seq, heads, headDim, true);
        t = ModelStepTimer.stop("attn.rope.fwd", t);
        core.forward(qh, kh, vh, yh);
        t = ModelStepTimer.stop("attn.core.fwd", t);
        Rope.permute(yh, y, batch, seq, heads, headDim, false);
        t = ModelStepTimer.stop("attn.rope.fwd", t);
        wo.forward(y, out, true);
        ModelStepTimer.stop("attn.proj.fwd", t);
    }

    /** dOut: [B*T, C] -> dx: [B*T, C] overwritten; weight grads accumulate. x is the forward input. */
    public void backward(INDArray x, INDArray dOut, INDArray dx) {
        long t = ModelStepTimer.start();
        wo.backward(y, dOut, tmp, false);
        t = ModelStepTimer.stop("attn.proj.bwd", t);
        Rope.permute(tmp, yh, batch, seq, heads, headDim, true); // yh is free now: reuse it for dY
        t = ModelStepTimer.stop("attn.rope.bwd", t);
        core.backward(qh, kh, vh, yh, dqh, dkh, dvh);
        t = ModelStepTimer.stop("attn.core.bwd", t);
        rope.backward(dqh, tmp, batch, heads);
        t = ModelStepTimer.stop("attn.rope.bwd", t);
        wq.backward(x, tmp, dx, false);
        t = ModelStepTimer.stop("attn.proj.bwd", t);
        rope.backward(dkh, tmp, batch, heads);
        t = ModelStepTimer.stop("attn.rope.bwd", t);
        wk.backward(x, tmp, dx, true);
        t = ModelStepTimer.stop("attn.proj.bwd", t);
        Rope.permute(dvh, tmp, batch, seq, heads, headDim, false);
        t = ModelStepTimer.stop("attn.rope.bwd", t);
        wv.backward(x, tmp, dx, true);
        ModelStepTimer.stop("attn.proj.bwd", t);
    }
}
