package dev.tessera.worker.checkpoint;

import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import java.util.Random;
import org.nd4j.linalg.api.buffer.DataType;

/** Parameter stores with the Hugging Face tensor names of DESIGN.md, filled with random values. */
final class TinyModel {

    private TinyModel() {
    }

    static ModelConfig dense() {
        return new ModelConfig(32, 8, 2, 2, 12, 0, 0, 0, 0, 10000.0, 1e-5, 0.0, 16);
    }

    /** Dense layer 0 and MoE layer 1 (moe_every 2): Qwen2-MoE. */
    static ModelConfig moe() {
        return new ModelConfig(32, 8, 2, 2, 12, 4, 2, 2, 6, 500000.0, 1e-6, 0.01, 64);
    }

    /** Every block MoE (moe_every 1): Mixtral. */
    static ModelConfig allMoe() {
        return new ModelConfig(32, 8, 2, 2, 12, 4, 2, 1, 6, 500000.0, 1e-6, 0.01, 64);
    }

    static ParameterStore store(ModelConfig c, DataType type, long seed) {
        ParameterStore.Builder b = ParameterStore.builder();
        int d = c.dModel();
        b.add("model.embed_tokens.weight", c.vocabSize(), d);
        for (int i = 0; i < c.nLayers(); i++) {
            String p = "model.layers." + i + ".";
            b.add(p + "input_layernorm.weight", d);
            for (String proj : new String[] {"q", "k", "v", "o"}) {
                b.add(p + "self_attn." + proj + "_proj.weight", d, d);
            }
            b.add(p + "post_attention_layernorm.weight", d);
            if (c.isMoeBlock(i)) {
                b.add(p + "block_sparse_moe.gate.weight", c.nExperts(), d);
                for (int e = 0; e < c.nExperts(); e++) {
                    String x = p + "block_sparse_moe.experts." + e + ".";
                    b.add(x + "w1.weight", c.expertDFF(), d);
                    b.add(x + "w2.weight", d, c.expertDFF());
                    b.add(x + "w3.weight", c.expertDFF(), d);
                }
            } else {
                b.add(p + "mlp.gate_proj.weight", c.dFF(), d);
                b.add(p + "mlp.up_proj.weight", c.dFF(), d);
                b.add(p + "mlp.down_proj.weight", d, c.dFF());
            }
        }
        b.add("model.norm.weight", d);
        b.add("lm_head.weight", c.vocabSize(), d);
        ParameterStore store = b.build(type);
        Random rnd = new Random(seed);
        for (long i = 0; i < store.numel(); i++) {
            store.params().putScalar(i, rnd.nextGaussian());
        }
        return store;
    }
}
