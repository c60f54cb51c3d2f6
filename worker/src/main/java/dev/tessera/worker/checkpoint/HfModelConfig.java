package dev.tessera.worker.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tessera.comm.UserInputException;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.Routing;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * {@link ModelConfig} as a Hugging Face {@code config.json} of the architecture {@link HfArchitecture#of} picks:
 * Llama for a dense model, Mixtral when every block is MoE, Qwen2-MoE when dense and MoE blocks interleave, with
 * that architecture's standard keys, so that its Hugging Face class builds exactly our model. (Tessera does not
 * test this with {@code transformers}, which the build does not have; docs/anchors/hf_load_check.py checks the
 * loss of an independent PyTorch forward pass.) {@code tessera_*} keys repeat the widths and the MoE spacing
 * in one form for all three, so the exact config round-trips.
 */
public final class HfModelConfig {

    static final String MOE_EVERY = "tessera_moe_every";
    static final String GATE = "tessera_gate";
    static final String CAPACITY = "tessera_capacity_factor";
    static final String EVAL_CAPACITY = "tessera_eval_capacity_factor";
    static final String DENSE_FF = "tessera_dense_intermediate_size";
    static final String EXPERT_FF = "tessera_expert_intermediate_size";

    private HfModelConfig() {
    }

    public static ObjectNode toJson(ModelConfig cfg, DataType dtype) {
        HfArchitecture arch = HfArchitecture.of(cfg);
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.putArray("architectures").add(arch.className);
        n.put("model_type", arch.modelType);
        n.put("vocab_size", cfg.vocabSize());
        n.put("hidden_size", cfg.dModel());
        // Mixtral's intermediate_size is the expert width; Llama's and Qwen2-MoE's the dense width.
        n.put("intermediate_size", arch == HfArchitecture.MIXTRAL ? cfg.expertDFF() : cfg.dFF());
        n.put("num_hidden_layers", cfg.nLayers());
        n.put("num_attention_heads", cfg.nHeads());
        n.put("num_key_value_heads", cfg.nHeads());
        n.put("head_dim", cfg.headDim());
        n.put("hidden_act", "silu");
        n.put("rms_norm_eps", cfg.normEps());
        n.put("rope_theta", cfg.ropeTheta());
        n.put("max_position_embeddings", cfg.maxSeqLen());
        if (arch == HfArchitecture.QWEN2_MOE) {
            n.put("num_experts", cfg.nExperts());
            n.put("moe_intermediate_size", cfg.expertDFF());
            n.put("decoder_sparse_step", cfg.moeEvery());
            ArrayNode dense = n.putArray("mlp_only_layers");
            for (int i = 0; i < cfg.nLayers(); i++) {
                if (!cfg.isMoeBlock(i)) {
                    dense.add(i);
                }
            }
            n.put("norm_topk_prob", true); // MoE renormalises the top-k router probabilities, as Mixtral
            n.put("shared_expert_intermediate_size", HfArchitecture.SHARED_EXPERT_FF);
            n.put("qkv_bias", true); // Qwen2-MoE has the biases (older versions always); they are written as zeros
            n.put("use_sliding_window", false);
        } else {
            n.put("num_local_experts", cfg.nExperts());
            n.put("attention_bias", false);
        }
        n.put("num_experts_per_tok", cfg.topK());
        n.put("router_aux_loss_coef", cfg.auxCoef());
        if (!cfg.routing().equals(Routing.DEFAULT)) {
            n.put(GATE, cfg.routing().gate());
            n.put(CAPACITY, cfg.routing().capacityFactor());
            n.put(EVAL_CAPACITY, cfg.routing().evalCapacityFactor());
            n.put("router_z_loss_coef", cfg.routing().zCoef());
            n.put("tessera_hyper_size", cfg.routing().hyperSize());
            n.put("tessera_gshard_second_expert", cfg.routing().secondExpert());
            n.put("tessera_gshard_renormalize_after_drop", cfg.routing().renormalizeAfterDrop());
            n.put("tessera_batch_prioritized", cfg.routing().batchPrioritized());
        }
        n.put("tie_word_embeddings", false);
        n.put("torch_dtype", torchDtype(dtype));
        n.put(MOE_EVERY, cfg.moeEvery());
        n.put(DENSE_FF, cfg.dFF());
        n.put(EXPERT_FF, cfg.expertDFF());
        return n;
    }

    /**
     * Reads a config written by {@link #toJson}, or a plain Llama / Mixtral / Qwen2-MoE one (then a Mixtral
     * config has MoE in every block, a Llama one none, and a Qwen2-MoE one must place its dense layers where
     * {@code decoder_sparse_step} does). {@code source} names the file in error messages.
     */
    public static ModelConfig fromJson(JsonNode n, String source) {
        HfArchitecture arch = HfArchitecture.declaredBy(n);
        boolean mixtral = arch == HfArchitecture.MIXTRAL;
        boolean qwen = arch == HfArchitecture.QWEN2_MOE;
        int ff = intField(n, "intermediate_size", source);
        String expertsKey = qwen ? "num_experts" : "num_local_experts";
        int experts = n.has(expertsKey) ? intField(n, expertsKey, source) : 0;
        int heads = intField(n, "num_attention_heads", source);
        if (n.has("num_key_value_heads") && intField(n, "num_key_value_heads", source) != heads) {
            throw new UserInputException(source + ": num_key_value_heads must equal num_attention_heads ("
                    + heads + "); Tessera has no grouped-query attention");
        }
        int layers = intField(n, "num_hidden_layers", source);
        int moeEvery = n.has(MOE_EVERY) ? intField(n, MOE_EVERY, source)
                : qwen ? intField(n, "decoder_sparse_step", source) : (mixtral ? 1 : 0);
        if (qwen) {
            checkQwenLayers(n, moeEvery, layers, source);
        }
        int expertFF = n.has(EXPERT_FF) ? intField(n, EXPERT_FF, source)
                : qwen ? intField(n, "moe_intermediate_size", source) : (mixtral ? ff : 0);
        return new ModelConfig(
                intField(n, "vocab_size", source),
                intField(n, "hidden_size", source),
                layers,
                heads,
                n.has(DENSE_FF) ? intField(n, DENSE_FF, source) : (mixtral ? 0 : ff),
                experts,
                n.has("num_experts_per_tok") ? intField(n, "num_experts_per_tok", source) : 0,
                moeEvery,
                expertFF,
                doubleField(n, "rope_theta", source),
                doubleField(n, "rms_norm_eps", source),
                n.has("router_aux_loss_coef") ? doubleField(n, "router_aux_loss_coef", source) : 0.0,
                intField(n, "max_position_embeddings", source),
                routing(n, source));
    }

    /** Tessera's routing keys, written only when they differ from Mixtral's dropless top-k. */
    private static Routing routing(JsonNode n, String source) {
        if (!n.has(GATE)) {
            return Routing.DEFAULT;
        }
        return new Routing(n.get(GATE).asText(), doubleField(n, CAPACITY, source), doubleField(n, EVAL_CAPACITY, source),
                doubleField(n, "router_z_loss_coef", source),
                n.has("tessera_hyper_size") ? intField(n, "tessera_hyper_size", source) : 0,
                n.path("tessera_gshard_second_expert").asText("random"),
                n.path("tessera_gshard_renormalize_after_drop").asBoolean(false),
                n.path("tessera_batch_prioritized").asBoolean(false));
    }

    /**
     * Tessera's MoE blocks are exactly every {@code moeEvery}-th, with renormalised top-k weights; a Qwen2-MoE
     * config that makes a sparse layer dense through {@code mlp_only_layers}, or does not renormalise, is a
     * model Tessera cannot train.
     */
    private static void checkQwenLayers(JsonNode n, int moeEvery, int layers, String source) {
        for (JsonNode layer : n.path("mlp_only_layers")) {
            int i = layer.asInt();
            if (i >= 0 && i < layers && moeEvery > 0 && (i + 1) % moeEvery == 0) {
                throw new UserInputException(source + ": mlp_only_layers makes layer " + i
                        + " dense, but Tessera's MoE blocks are exactly every decoder_sparse_step-th (" + moeEvery + ")");
            }
        }
        if (!n.path("norm_topk_prob").asBoolean(false)) {
            throw new UserInputException(source + ": norm_topk_prob must be true; Tessera's MoE renormalises the"
                    + " top-k router weights");
        }
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
