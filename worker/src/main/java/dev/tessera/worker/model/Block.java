package dev.tessera.worker.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One decoder block: h = x + Attn(RMSNorm(x)); out = h + FFN(RMSNorm(h)), FFN dense SwiGLU or MoE.
 * The residual adds are fused into the o_proj / down_proj gemms (beta=1 on an output pre-filled with the
 * residual), and backward works in place on one residual-gradient buffer.
 */
public final class Block {
    private final RMSNorm norm1;
    private final CausalSelfAttention attn;
    private final RMSNorm norm2;
    private final SwiGLU mlp;        // dense FFN, or null
    private final SwiGLU.Acts mlpActs;
    private final MoE moe;           // MoE FFN, or null
    private final INDArray n1;       // [N, C] RMSNorm(x)
    private final INDArray h;        // [N, C] x + Attn(n1)
    private final INDArray n2;       // [N, C] RMSNorm(h)
    private final INDArray dn;       // [N, C] gradient wrt n1 / n2

    /**
     * What a block's backward reports as it goes, so that ZeRO-3 lets each part of the block go as soon as it can.
     *
     * @param attentionRecomputed the recomputed forward (activation checkpointing) has run the attention half: its
     *                   parameters are not read again before the attention backward
     * @param downDone   a dense block's down projection is through: from {@link #downFrom} on, its gradients are
     *                   final and its parameters are not read again
     * @param gateUpRead a dense block's gate and up projections are not read again, from {@link #gateUpFrom} on;
     *                   their gradients are not written yet
     * @param ffnDone    the FFN half is through: from {@link #ffnFrom} on, gradients final and parameters unread
     */
    public record Progress(Runnable attentionRecomputed, Runnable downDone, Runnable gateUpRead, Runnable ffnDone) {

        private static final Runnable NOTHING = () -> { };

        public static final Progress NONE = new Progress(NOTHING, NOTHING, NOTHING, NOTHING);
    }

    public static String prefix(int layer) {
        return "model.layers." + layer;
    }

    /**
     * The first element of layer {@code layer}'s FFN half (its post-attention norm, then the MLP or MoE) in the
     * flat buffers: the tensors {@link #register} declares after the attention half.
     */
    public static long ffnFrom(ParameterStore params, int layer) {
        return params.tensor(prefix(layer) + ".post_attention_layernorm.weight").offset();
    }

    /** The first element of dense layer {@code layer}'s gate and up projections, which lie side by side. */
    public static long gateUpFrom(ParameterStore params, int layer) {
        return params.tensor(prefix(layer) + ".mlp.gate_proj.weight").offset();
    }

    /**
     * The first element of dense layer {@code layer}'s down projection, its last tensor: final, and no longer read,
     * once the FFN's backward has passed it.
     */
    public static long downFrom(ParameterStore params, int layer) {
        return params.tensor(prefix(layer) + ".mlp.down_proj.weight").offset();
    }

    public static void register(ParameterStore.Layout b, ModelConfig cfg, int layer) {
        register(b, cfg, layer, ExpertShard.all(cfg.nExperts()));
    }

    /** With only the experts of {@code held} (expert parallelism). */
    public static void register(ParameterStore.Layout b, ModelConfig cfg, int layer, ExpertShard held) {
        String p = prefix(layer);
        int c = cfg.dModel();
        b.add(p + ".input_layernorm.weight", c);
        CausalSelfAttention.register(b, p + ".self_attn", c);
        b.add(p + ".post_attention_layernorm.weight", c);
        if (cfg.isMoeBlock(layer)) {
            MoE.register(b, p + ".block_sparse_moe", cfg, held);
        } else {
            b.add(p + ".mlp.gate_proj.weight", cfg.dFF(), c);
            b.add(p + ".mlp.up_proj.weight", cfg.dFF(), c);
            b.add(p + ".mlp.down_proj.weight", c, cfg.dFF());
        }
    }

    /**
     * @param scoresScratch a [B*H, T, T] buffer the layers' attention may share, or null
     * @param activations   where the block's per-token buffers come from: its own, or a set shared by the
     *                      blocks that recompute their activations in backward (see {@link Transformer})
     */
    public Block(ParameterStore ps, ModelConfig cfg, int layer, int batch, int seq, INDArray scoresScratch,
                 Activations activations) {
        this(ps, cfg, layer, batch, scoresScratch, activations, new ModelShard(ExpertShard.all(cfg.nExperts()),
                SequenceShard.whole(seq)));
    }

    /** Holding only the experts and the tokens of each sequence that {@code shard} gives this rank. */
    public Block(ParameterStore ps, ModelConfig cfg, int layer, int batch, INDArray scoresScratch,
                 Activations activations, ModelShard shard) {
        String p = prefix(layer);
        DataType dt = ps.dataType();
        ExpertShard held = shard.experts();
        int n = Math.multiplyExact(batch, shard.sequence().length());
        activations.nextLayer();
        norm1 = new RMSNorm(ps, p + ".input_layernorm.weight", cfg.normEps(), n, activations);
        attn = new CausalSelfAttention(ps, p + ".self_attn", cfg, batch, shard.sequence(), scoresScratch, activations);
        norm2 = new RMSNorm(ps, p + ".post_attention_layernorm.weight", cfg.normEps(), n, activations);
        if (cfg.isMoeBlock(layer)) {
            moe = new MoE(ps, p + ".block_sparse_moe", cfg, n, activations, held);
            mlp = null;
            mlpActs = null;
        } else {
            moe = null;
            mlp = SwiGLU.stacked(ps, p + ".mlp.gate_proj.weight", p + ".mlp.up_proj.weight",
                    p + ".mlp.down_proj.weight");
            mlpActs = SwiGLU.Acts.allocate(dt, n, cfg.dFF(), activations);
        }
        n1 = activations.array(dt, n, cfg.dModel());
        h = activations.array(dt, n, cfg.dModel());
        n2 = activations.array(dt, n, cfg.dModel());
        dn = activations.array(dt, n, cfg.dModel());
    }

    public boolean isMoe() {
        return moe != null;
    }

    public CausalSelfAttention attention() {
        return attn;
    }

    /** The MoE FFN, or null in a dense block. */
    public MoE moe() {
        return moe;
    }

    /** x: [N, C] -> out: [N, C]. Returns the block's MoE aux loss (0 for a dense block). */
    public double forward(INDArray x, INDArray out) {
        norm1.forward(x, n1);                        // n1 = RMSNorm(x)
        Mem.copy(x, h);                              // h = x ...
        attn.forward(n1, h);                         //   ... + Attn(n1)
        norm2.forward(h, n2);                        // n2 = RMSNorm(h)
        Mem.copy(h, out);                            // out = h ...
        if (moe != null) {
            return moe.forward(n2, out);             //   ... + MoE(n2)
        }
        mlp.forward(n2, mlpActs, out, true);         //   ... + SwiGLU(n2)
        return 0;
    }

    /**
     * Activation checkpointing: the activations backward reads, recomputed from the kept input x with the same
     * bits. The block's output is kept too (the next block's input), so a dense block skips its down projection,
     * about a fifth of its forward; a MoE block runs its whole forward again into {@code out}, rebuilding its routing.
     */
    public void recompute(INDArray x, INDArray out) {
        recompute(x, out, Progress.NONE);
    }

    /** As {@link #recompute(INDArray, INDArray)}, reporting to {@code progress} once the attention half has run. */
    public void recompute(INDArray x, INDArray out, Progress progress) {
        norm1.forward(x, n1);
        Mem.copy(x, h);
        attn.forward(n1, h);
        progress.attentionRecomputed().run();
        norm2.forward(h, n2);
        if (moe != null) {
            Mem.copy(h, out);
            moe.forward(n2, out);
        } else {
            mlp.forwardActivations(n2, mlpActs);
        }
    }

    /** dRes: [N, C], on entry dLoss/dout, on return dLoss/dx. x is the forward input. */
    public void backward(INDArray x, INDArray dRes, double auxGrad) {
        backward(x, dRes, auxGrad, Progress.NONE);
    }

    /** As {@link #backward(INDArray, INDArray, double)}, reporting to {@code progress} as it goes. */
    public void backward(INDArray x, INDArray dRes, double auxGrad, Progress progress) {
        if (moe != null) {
            moe.backward(n2, dRes, dn, auxGrad);     // dn = dLoss/dn2
        } else {
            mlp.backward(n2, mlpActs, dRes, dn, false, progress.downDone(), progress.gateUpRead());
        }
        norm2.backward(h, dn, dRes, true);           // dRes = dLoss/dh (the residual's share was already there)
        progress.ffnDone().run();
        attn.backward(n1, dRes, dn);                 // dn = dLoss/dn1
        norm1.backward(x, dn, dRes, true);           // dRes = dLoss/dx
    }
}
