package dev.tessera.worker.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tessera.comm.UserInputException;
import dev.tessera.worker.model.ModelConfig;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * {@link ModelConfig} as a Hugging Face {@code config.json}: the standard Llama / Mixtral keys, so the
 * exported model loads with {@code AutoModelForCausalLM}, plus {@code tessera_*} keys for what the Hugging
 * Face schema cannot say (MoE only in every k-th block, a dense width different from the expert width),
 * so the exact config round-trips.
 */
public final class HfModelConfig {

    static final String MOE_EVERY = "tessera_moe_every";
    static final String DENSE_FF = "tessera_dense_intermediate_size";
    static final String EXPERT_FF = "tessera_expert_intermediate_size";

    private HfModelConfig() {
    }

    /** True when any block is MoE, i.e. when the Hugging Face architecture is Mixtral. */
    public static boolean isMoe(ModelConfig cfg) {
        for (int i = 0; i < cfg.nLayers(); i++) {
            if (cfg.isMoeBlock(i)) {
                return true;
            }
        }
        return false;
    }

    public static ObjectNode toJson(ModelConfig cfg, DataType dtype) {
        boolean moe = isMoe(cfg);
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.putArray("architectures").add(moe ? "MixtralForCausalLM" : "LlamaForCausalLM");
        n.put("model_type", moe ? "mixtral" : "llama");
        n.put("vocab_size", cfg.vocabSize());
        n.put("hidden_size", cfg.dModel());
        // Mixtral's intermediate_size is the expert width; Llama's is the dense width.
        n.put("intermediate_size", moe ? cfg.expertDFF() : cfg.dFF());
        n.put("num_hidden_layers", cfg.nLayers());
        n.put("num_attention_heads", cfg.nHeads());
        n.put("num_key_value_heads", cfg.nHeads());
        n.put("head_dim", cfg.headDim());
        n.put("hidden_act", "silu");
        n.put("rms_norm_eps", cfg.normEps());
        n.put("rope_theta", cfg.ropeTheta());
        n.put("max_position_embeddings", cfg.maxSeqLen());
        n.put("num_local_experts", cfg.nExperts());
        n.put("num_experts_per_tok", cfg.topK());
        n.put("router_aux_loss_coef", cfg.auxCoef());
        n.put("attention_bias", false);
        n.put("tie_word_embeddings", false);
        n.put("torch_dtype", torchDtype(dtype));
        n.put(MOE_EVERY, cfg.moeEvery());
        n.put(DENSE_FF, cfg.dFF());
        n.put(EXPERT_FF, cfg.expertDFF());
        return n;
    }

    /**
     * Reads a config written by {@link #toJson}, or a plain Llama / Mixtral one (then a Mixtral config has
     * MoE in every block and a Llama one none). {@code source} names the file in error messages.
     */
    public static ModelConfig fromJson(JsonNode n, String source) {
        boolean moe = n.path("model_type").asText("").equals("mixtral")
                || n.path("architectures").path(0).asText("").startsWith("Mixtral");
        int ff = intField(n, "intermediate_size", source);
        int experts = n.has("num_local_experts") ? intField(n, "num_local_experts", source) : 0;
        int heads = intField(n, "num_attention_heads", source);
        if (n.has("num_key_value_heads") && intField(n, "num_key_value_heads", source) != heads) {
            throw new UserInputException(source + ": num_key_value_heads must equal num_attention_heads ("
                    + heads + "); Tessera has no grouped-query attention");
        }
        return new ModelConfig(
                intField(n, "vocab_size", source),
                intField(n, "hidden_size", source),
                intField(n, "num_hidden_layers", source),
                heads,
                n.has(DENSE_FF) ? intField(n, DENSE_FF, source) : (moe ? 0 : ff),
                experts,
                n.has("num_experts_per_tok") ? intField(n, "num_experts_per_tok", source) : 0,
                n.has(MOE_EVERY) ? intField(n, MOE_EVERY, source) : (moe ? 1 : 0),
                n.has(EXPERT_FF) ? intField(n, EXPERT_FF, source) : (moe ? ff : 0),
                doubleField(n, "rope_theta", source),
                doubleField(n, "rms_norm_eps", source),
                n.has("router_aux_loss_coef") ? doubleField(n, "router_aux_loss_coef", source) : 0.0,
                intField(n, "max_position_embeddings", source));
    }

    /** The parameter dtype recorded in {@code torch_dtype}. */
    public static DataType dataType(JsonNode n, String source) {
        String t = n.path("torch_dtype").asText("float32");
        switch (t) {
            case "float32":
                return DataType.FLOAT;
            case "float64":
                return DataType.DOUBLE;
            default:
                throw new UserInputException(source + ": torch_dtype " + t + " is not supported (Tessera trains float32 or float64)");
        }
    }

    private static String torchDtype(DataType dtype) {
        if (dtype == DataType.FLOAT) {
            return "float32";
        }
        if (dtype == DataType.DOUBLE) {
            return "float64";
        }
        throw new IllegalArgumentException("parameters must be FLOAT or DOUBLE, not " + dtype);
    }

    private static int intField(JsonNode n, String field, String source) {
        JsonNode v = n.get(field);
        if (v == null || !v.isIntegralNumber() || !v.canConvertToInt()) {
            throw new UserInputException(source + ": field " + field + " is missing or not an integer");
        }
        return v.asInt();
    }

    private static double doubleField(JsonNode n, String field, String source) {
        JsonNode v = n.get(field);
        if (v == null || !v.isNumber()) {
            throw new UserInputException(source + ": field " + field + " is missing or not a number");
        }
        return v.asDouble();
    }
}
