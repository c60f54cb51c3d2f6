package dev.tessera.worker.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Multi-head causal self-attention: q, k, v, o projections without bias, RoPE on q and k, then
 * {@link AttentionCore}. q|k|v are adjacent in the parameter layout, so they run as one [3C, C] gemm
 * (and one dW and one dx gemm backward). float32 feeds the fused kernel straight from that [N, 3C]
 * output (RoPE and the head-major permutes inside it); float64, and every sequence-parallel scheme, go through
 * explicit RoPE (at the tokens' global positions) and permute passes into head-major buffers, then the
 * {@link SequenceAttention} of the rank's {@link SequenceShard}. Activations for one (batch, seq) shape are allocated
 * once here.
 */
public final class CausalSelfAttention {
    private final Linear wqkv; // [3C, C] q_proj | k_proj | v_proj
    private final Linear wo;
    private final Rope rope;
    private final SequenceAttention attention;
    private final AttentionCore fused; // float32 whole sequences: the kernel reads qkv and writes y directly; else null
    private final int batch;
    private final int seq;
    private final int heads;
    private final int headDim;
    private final int dModel;
    private final INDArray qkv;  // [B*T, 3C] projections, q and k not yet rotated
    private final INDArray dqkv; // [B*T, 3C] their grads
    private final INDArray y;    // [B*T, C] attention output, token-major: o_proj's input
    private final INDArray tmp;  // [B*T, C] dY from o_proj's backward
    private final INDArray[] hm; // unless fused: head-major q, k, v, y, dq, dk, dv, each [B*H, T, D]

    /**
     * Over whole sequences of {@code seq} tokens.
     *
     * @param prefix e.g. {@code model.layers.3.self_attn}
     * @param scoresScratch a [B*H, T, T] buffer layers may share, or null
     */
    public CausalSelfAttention(ParameterStore ps, String prefix, ModelConfig cfg, int batch, int seq,
                               INDArray scoresScratch) {
        this(ps, prefix, cfg, batch, SequenceShard.whole(seq), scoresScratch, Activations.own());
    }

    /** Over the tokens of {@code shard} in each of {@code batch} sequences, its buffers from {@code activations}. */
    public CausalSelfAttention(ParameterStore ps, String prefix, ModelConfig cfg, int batch, SequenceShard shard,
                               INDArray scoresScratch, Activations activations) {
        int seq = shard.length();
        DataType dt = ps.dataType();
        this.wqkv = Linear.stacked(ps, prefix + ".q_proj.weight", prefix + ".k_proj.weight",
                prefix + ".v_proj.weight");
        this.wo = new Linear(ps, prefix + ".o_proj.weight");
        this.batch = batch;
        this.seq = seq;
        this.heads = cfg.nHeads();
        this.headDim = cfg.headDim();
        this.dModel = cfg.dModel();
        if (headDim * heads != dModel) {
            throw new IllegalArgumentException("d_model " + dModel + " is not divisible by n_heads " + heads);
        }
        this.rope = new Rope(headDim, cfg.ropeTheta(), shard.positions());
        int bh = Math.multiplyExact(batch, heads);
        this.attention = shard.attention().create(dt, batch, heads, headDim, seq,
                dt == DataType.FLOAT ? null : scoresScratch, activations);
        this.fused = attention instanceof AttentionCore core && core.fusedTokenMajor() ? core : null;
        long n = (long) batch * seq;
        qkv = activations.array(dt, n, 3L * dModel);
        dqkv = activations.array(dt, n, 3L * dModel);
        y = activations.array(dt, n, dModel);
        tmp = activations.array(dt, n, dModel);
        hm = new INDArray[fused != null ? 0 : 7];
        for (int i = 0; i < hm.length; i++) {
            hm[i] = activations.array(dt, bh, seq, headDim);
        }
    }

    /** Nanoseconds this layer's attention has waited for the other sequence-parallel ranks. */
    public long waitedNanos() {
        return attention.waitedNanos();
    }

    public static void register(ParameterStore.Layout b, String prefix, int dModel) {
        for (String p : new String[] {"q", "k", "v", "o"}) {
            b.add(prefix + "." + p + "_proj.weight", dModel, dModel);
        }
    }

    /** x: [B*T, C]; out: [B*T, C] += Attn(x) (the block pre-fills out with the residual). */
    public void forward(INDArray x, INDArray out) {
        wqkv.forward(x, qkv, false);                        // [B*T, C] -> [B*T, 3C]
        if (fused != null) {
            fused.forwardTokenMajor(qkv, rope, y);           // RoPE, attend: [B*T, 3C] -> [B*T, C]
        } else {
            int c3 = 3 * dModel;
            rope.forward(qkv, c3, 0, hm[0], batch, heads);  // q -> [B*H, T, D], rotated
            rope.forward(qkv, c3, dModel, hm[1], batch, heads);
            Rope.permute(qkv, hm[2], batch, seq, heads, headDim, true, c3, 2 * dModel);
            attention.forward(hm[0], hm[1], hm[2], hm[3]);  // [B*H, T, D]
            Rope.permute(hm[3], y, batch, seq, heads, headDim, false); // -> [B*T, C]
        }
        wo.forward(y, out, true);                           // out += y Wo^T
    }

    /** dOut: [B*T, C] -> dx: [B*T, C] overwritten; weight grads accumulate. x is the forward input. */
    public void backward(INDArray x, INDArray dOut, INDArray dx) {
        wo.backward(y, dOut, tmp, false);                   // dY [B*T, C]
        if (fused != null) {
            fused.backwardTokenMajor(qkv, rope, tmp, dqkv); // -> [B*T, 3C]
        } else {
            int c3 = 3 * dModel;
            Rope.permute(tmp, hm[3], batch, seq, heads, headDim, true); // hm[3] (y) is free now: dY
            attention.backward(hm[0], hm[1], hm[2], hm[3], hm[4], hm[5], hm[6]);
            rope.backward(hm[4], dqkv, c3, 0, batch, heads);
            rope.backward(hm[5], dqkv, c3, dModel, batch, heads);
            Rope.permute(hm[6], dqkv, batch, seq, heads, headDim, false, c3, 2 * dModel);
        }
        wqkv.backward(x, dqkv, dx, false);                  // [B*T, 3C] -> [B*T, C]
    }
}
