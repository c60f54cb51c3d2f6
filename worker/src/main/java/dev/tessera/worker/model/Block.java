package dev.tessera.worker.model;

import dev.tessera.worker.parallel.ReplicaReducer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

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

    public static String prefix(int layer) {
        return "model.layers." + layer;
    }

    public static void register(ParameterStore.Layout b, ModelConfig cfg, int layer) {
        String p = prefix(layer);
        int c = cfg.dModel();
        b.add(p + ".input_layernorm.weight", c);
        CausalSelfAttention.register(b, p + ".self_attn", c);
        b.add(p + ".post_attention_layernorm.weight", c);
        if (cfg.isMoeBlock(layer)) {
            MoE.register(b, p + ".block_sparse_moe", cfg);
        } else {
            b.add(p + ".mlp.gate_proj.weight", cfg.dFF(), c);
            b.add(p + ".mlp.up_proj.weight", cfg.dFF(), c);
            b.add(p + ".mlp.down_proj.weight", c, cfg.dFF());
        }
    }

    /** @param replicas sums MoE routing statistics over data-parallel replicas ({@link ReplicaReducer#LOCAL} alone) */
    public Block(ParameterStore ps, ModelConfig cfg, int layer, int batch, int seq, INDArray scoresScratch,
                 ReplicaReducer replicas) {
        String p = prefix(layer);
        DataType dt = ps.dataType();
        int n = Math.multiplyExact(batch, seq);
        norm1 = new RMSNorm(ps, p + ".input_layernorm.weight", cfg.normEps(), n);
        attn = new CausalSelfAttention(ps, p + ".self_attn", cfg, batch, seq, 0, scoresScratch);
        norm2 = new RMSNorm(ps, p + ".post_attention_layernorm.weight", cfg.normEps(), n);
        if (cfg.isMoeBlock(layer)) {
            moe = new MoE(ps, p + ".block_sparse_moe", cfg, n, replicas);
            mlp = null;
            mlpActs = null;
        } else {
            moe = null;
            mlp = SwiGLU.stacked(ps, p + ".mlp.gate_proj.weight", p + ".mlp.up_proj.weight",
                    p + ".mlp.down_proj.weight");
            mlpActs = SwiGLU.Acts.allocate(dt, n, cfg.dFF());
        }
        n1 = Nd4j.create(dt, n, cfg.dModel());
        h = Nd4j.create(dt, n, cfg.dModel());
        n2 = Nd4j.create(dt, n, cfg.dModel());
        dn = Nd4j.create(dt, n, cfg.dModel());
    }

    public boolean isMoe() {
        return moe != null;
    }

    /** x: [N, C] -> out: [N, C]. Returns the block's MoE aux loss (0 for a dense block). */
    public double forward(INDArray x, INDArray out) {
        long t = ModelStepTimer.start();
        norm1.forward(x, n1);
        t = ModelStepTimer.stop("rmsnorm.fwd", t);
        Mem.copy(x, h);
        ModelStepTimer.stop("residual.copy", t);
        attn.forward(n1, h);
        t = ModelStepTimer.start();
        norm2.forward(h, n2);
        t = ModelStepTimer.stop("rmsnorm.fwd", t);
        Mem.copy(h, out);
        ModelStepTimer.stop("residual.copy", t);
        if (moe != null) {
            return moe.forward(n2, out);
        }
        mlp.forward(n2, mlpActs, out, true);
        return 0;
    }

    /** dRes: [N, C], on entry dLoss/dout, on return dLoss/dx. x is the forward input. */
    public void backward(INDArray x, INDArray dRes, double auxGrad) {
        if (moe != null) {
            moe.backward(n2, dRes, dn, auxGrad);
        } else {
            mlp.backward(n2, mlpActs, dRes, dn, false);
        }
        long t = ModelStepTimer.start();
        norm2.backward(h, dn, dRes, true);
        ModelStepTimer.stop("rmsnorm.bwd", t);
        attn.backward(n1, dRes, dn);
        t = ModelStepTimer.start();
        norm1.backward(x, dn, dRes, true);
        ModelStepTimer.stop("rmsnorm.bwd", t);
    }
}
