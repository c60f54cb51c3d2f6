package dev.tessera.worker.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.worker.model.ModelConfig;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The Hugging Face architecture a model is exported as, and its tensor names there. A dense model is Llama and
 * an all-MoE model Mixtral, whose names Tessera's layout uses as they are. A model that interleaves dense and MoE
 * blocks is Qwen2-MoE, the one of these whose implementation mixes both kinds of layer ({@code mlp_only_layers},
 * {@code decoder_sparse_step}); its sparse block is Mixtral's (softmax router, top-k renormalised when
 * {@code norm_topk_prob}, SwiGLU experts) plus what our model lacks: q/k/v biases and a gated shared expert.
 * Those are written as zeros ({@link #zeroFillers}), which makes them contribute exactly nothing: the biases
 * add 0, and a shared expert whose down_proj is 0 outputs 0 whatever its gate ({@code sigmoid(0) * 0}).
 */
enum HfArchitecture {
    LLAMA("LlamaForCausalLM", "llama"),
    MIXTRAL("MixtralForCausalLM", "mixtral"),
    QWEN2_MOE("Qwen2MoeForCausalLM", "qwen2_moe");

    /** The smallest shared expert the Qwen2-MoE config allows with non-empty tensors; it stays all zeros. */
    static final int SHARED_EXPERT_FF = 1;

    final String className;
    final String modelType;

    HfArchitecture(String className, String modelType) {
        this.className = className;
        this.modelType = modelType;
    }

    static HfArchitecture of(ModelConfig cfg) {
        int moe = 0;
        for (int i = 0; i < cfg.nLayers(); i++) {
            moe += cfg.isMoeBlock(i) ? 1 : 0;
        }
        return moe == 0 ? LLAMA : moe == cfg.nLayers() ? MIXTRAL : QWEN2_MOE;
    }

    /** The architecture a {@code config.json} declares ({@code model_type}, else {@code architectures[0]}). */
    static HfArchitecture declaredBy(JsonNode config) {
        String type = config.path("model_type").asText("");
        String cls = config.path("architectures").path(0).asText("");
        for (HfArchitecture a : values()) {
            if (a.modelType.equals(type) || type.isEmpty() && a.className.equals(cls)) {
                return a;
            }
        }
        return LLAMA;
    }

    /** The name under which Tessera's tensor {@code name} (Llama / Mixtral naming) is stored. */
    String exportedName(String name) {
        if (this != QWEN2_MOE || !name.contains(".block_sparse_moe.")) {
            return name;
        }
        String n = name.replace(".block_sparse_moe.", ".mlp.");
        if (!n.contains(".experts.")) {
            return n; // the router: mlp.gate.weight
        }
        // Mixtral's expert is w2(silu(w1 x) * w3 x); Qwen2-MoE's down(silu(gate x) * up x).
        return n.replace(".w1.weight", ".gate_proj.weight").replace(".w3.weight", ".up_proj.weight")
                .replace(".w2.weight", ".down_proj.weight");
    }

    /** Tensors the architecture has and our model lacks, by name and shape: all written as zeros. */
    Map<String, long[]> zeroFillers(ModelConfig cfg) {
        Map<String, long[]> fillers = new LinkedHashMap<>();
        if (this != QWEN2_MOE) {
            return fillers;
        }
        long c = cfg.dModel();
        for (int i = 0; i < cfg.nLayers(); i++) {
            String p = "model.layers." + i + ".";
            for (String proj : new String[] {"q", "k", "v"}) {
                fillers.put(p + "self_attn." + proj + "_proj.bias", new long[] {c});
            }
            if (cfg.isMoeBlock(i)) {
                fillers.put(p + "mlp.shared_expert.gate_proj.weight", new long[] {SHARED_EXPERT_FF, c});
                fillers.put(p + "mlp.shared_expert.up_proj.weight", new long[] {SHARED_EXPERT_FF, c});
                fillers.put(p + "mlp.shared_expert.down_proj.weight", new long[] {c, SHARED_EXPERT_FF});
                fillers.put(p + "mlp.shared_expert_gate.weight", new long[] {1, c});
            }
        }
        return fillers;
    }
}
