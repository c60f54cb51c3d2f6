package dev.tessera.worker.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tessera.comm.UserInputException;
import dev.tessera.worker.io.AtomicFiles;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The exported checkpoint is exactly what its config.json's Hugging Face class expects: every tensor name and
 * shape of the module tree ({@code LlamaForCausalLM}, {@code MixtralForCausalLM}, {@code Qwen2MoeForCausalLM}
 * of transformers' modeling_*.py), written out here by hand, independent of the exporter's own name mapping.
 */
class HfExportTest {

    @TempDir
    Path run;

    private static final int C = 8;
    private static final int V = 32;

    /** LlamaModel: embed_tokens, layers[i].{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm, mlp}. */
    private static void llamaCommon(Map<String, List<Long>> m, int layer, boolean qkvBias) {
        String p = "model.layers." + layer + ".";
        m.put(p + "input_layernorm.weight", List.of((long) C));
        m.put(p + "post_attention_layernorm.weight", List.of((long) C));
        for (String proj : new String[] {"q", "k", "v", "o"}) {
            m.put(p + "self_attn." + proj + "_proj.weight", List.of((long) C, (long) C));
        }
        if (qkvBias) { // Qwen2MoeAttention: q, k, v with bias; o without
            for (String proj : new String[] {"q", "k", "v"}) {
                m.put(p + "self_attn." + proj + "_proj.bias", List.of((long) C));
            }
        }
    }

    private static void denseMlp(Map<String, List<Long>> m, int layer, long ff) {
        String p = "model.layers." + layer + ".mlp.";
        m.put(p + "gate_proj.weight", List.of(ff, (long) C));
        m.put(p + "up_proj.weight", List.of(ff, (long) C));
        m.put(p + "down_proj.weight", List.of((long) C, ff));
    }

    private static void ends(Map<String, List<Long>> m) {
        m.put("model.embed_tokens.weight", List.of((long) V, (long) C));
        m.put("model.norm.weight", List.of((long) C));
        m.put("lm_head.weight", List.of((long) V, (long) C));
    }

    private static Map<String, List<Long>> expectedLlama() {
        Map<String, List<Long>> m = new TreeMap<>();
        ends(m);
        for (int i = 0; i < 2; i++) {
            llamaCommon(m, i, false);
            denseMlp(m, i, 12);
        }
        return m;
    }

    /** MixtralSparseMoeBlock: gate [E, C]; experts[e].{w1 [F, C], w2 [C, F], w3 [F, C]}. */
    private static Map<String, List<Long>> expectedMixtral() {
        Map<String, List<Long>> m = new TreeMap<>();
        ends(m);
        for (int i = 0; i < 2; i++) {
            llamaCommon(m, i, false);
            String p = "model.layers." + i + ".block_sparse_moe.";
            m.put(p + "gate.weight", List.of(4L, (long) C));
            for (int e = 0; e < 4; e++) {
                m.put(p + "experts." + e + ".w1.weight", List.of(6L, (long) C));
                m.put(p + "experts." + e + ".w2.weight", List.of((long) C, 6L));
                m.put(p + "experts." + e + ".w3.weight", List.of(6L, (long) C));
            }
        }
        return m;
    }

    /**
     * Qwen2MoeDecoderLayer: layer 0 is in mlp_only_layers (Qwen2MoeMLP of intermediate_size), layer 1 a
     * Qwen2MoeSparseMoeBlock: gate [E, C], experts[e] Qwen2MoeMLP of moe_intermediate_size, shared_expert
     * Qwen2MoeMLP of shared_expert_intermediate_size, shared_expert_gate [1, C].
     */
    private static Map<String, List<Long>> expectedQwen2Moe() {
        Map<String, List<Long>> m = new TreeMap<>();
        ends(m);
        llamaCommon(m, 0, true);
        denseMlp(m, 0, 12);
        llamaCommon(m, 1, true);
        String p = "model.layers.1.mlp.";
        m.put(p + "gate.weight", List.of(4L, (long) C));
        for (int e = 0; e < 4; e++) {
            m.put(p + "experts." + e + ".gate_proj.weight", List.of(6L, (long) C));
            m.put(p + "experts." + e + ".up_proj.weight", List.of(6L, (long) C));
            m.put(p + "experts." + e + ".down_proj.weight", List.of((long) C, 6L));
        }
        m.put(p + "shared_expert.gate_proj.weight", List.of(1L, (long) C));
        m.put(p + "shared_expert.up_proj.weight", List.of(1L, (long) C));
        m.put(p + "shared_expert.down_proj.weight", List.of((long) C, 1L));
        m.put(p + "shared_expert_gate.weight", List.of(1L, (long) C));
        return m;
    }

    private Path export(ModelConfig cfg, String name) {
        ParameterStore store = TinyModel.store(cfg, DataType.FLOAT, 3);
        return CheckpointWriter.write(run.resolve(name), 1, cfg, store, Map.of(), Map.of("step", 1));
    }

    private static Map<String, List<Long>> exported(Path dir) {
        Map<String, List<Long>> m = new TreeMap<>();
        try (SafeTensorsReader r = SafeTensors.open(dir.resolve("model-00001-of-00001.safetensors"))) {
            for (SafeTensors.Entry e : r.entries()) {
                List<Long> shape = new ArrayList<>();
                for (long d : e.shape()) {
                    shape.add(d);
                }
                m.put(e.name(), shape);
            }
        }
        return m;
    }

    private static JsonNode config(Path dir) throws IOException {
        return Json.MAPPER.readTree(dir.resolve("config.json").toFile());
    }

    @Test
    void denseIsLlamaWithExactlyItsTensors() throws IOException {
        Path dir = export(TinyModel.dense(), "dense");
        assertEquals(expectedLlama(), exported(dir));
        JsonNode c = config(dir);
        assertEquals("LlamaForCausalLM", c.get("architectures").get(0).asText());
        assertEquals("llama", c.get("model_type").asText());
        assertEquals(12, c.get("intermediate_size").asInt());
        assertFalse(c.get("attention_bias").asBoolean());
    }

    @Test
    void allMoeIsMixtralWithExactlyItsTensors() throws IOException {
        Path dir = export(TinyModel.allMoe(), "mixtral");
        assertEquals(expectedMixtral(), exported(dir));
        JsonNode c = config(dir);
        assertEquals("MixtralForCausalLM", c.get("architectures").get(0).asText());
        assertEquals("mixtral", c.get("model_type").asText());
        assertEquals(6, c.get("intermediate_size").asInt(), "Mixtral's intermediate_size is the expert width");
        assertEquals(4, c.get("num_local_experts").asInt());
        assertEquals(2, c.get("num_experts_per_tok").asInt());
    }

    @Test
    void mixedIsQwen2MoeWithExactlyItsTensorsAndConfig() throws IOException {
        Path dir = export(TinyModel.moe(), "mixed");
        assertEquals(expectedQwen2Moe(), exported(dir));
        JsonNode c = config(dir);
        assertEquals("Qwen2MoeForCausalLM", c.get("architectures").get(0).asText());
        assertEquals("qwen2_moe", c.get("model_type").asText());
        assertEquals(12, c.get("intermediate_size").asInt(), "Qwen2-MoE's intermediate_size is the dense width");
        assertEquals(6, c.get("moe_intermediate_size").asInt());
        assertEquals(4, c.get("num_experts").asInt());
        assertEquals(2, c.get("num_experts_per_tok").asInt());
        assertEquals(2, c.get("decoder_sparse_step").asInt());
        assertEquals(List.of(0), Json.MAPPER.convertValue(c.get("mlp_only_layers"), List.class));
        assertTrue(c.get("norm_topk_prob").asBoolean());
        assertEquals(1, c.get("shared_expert_intermediate_size").asInt());
        assertTrue(c.get("qkv_bias").asBoolean());
        assertFalse(c.get("use_sliding_window").asBoolean());
        assertEquals(500000.0, c.get("rope_theta").asDouble());
        assertEquals(1e-6, c.get("rms_norm_eps").asDouble());
        assertEquals(0.01, c.get("router_aux_loss_coef").asDouble());
        assertEquals(2, c.get("num_key_value_heads").asInt());
        assertFalse(c.get("tie_word_embeddings").asBoolean());
        // The tensors our model lacks are zeros, so they contribute nothing.
        try (SafeTensorsReader r = SafeTensors.open(dir.resolve("model-00001-of-00001.safetensors"))) {
            for (String name : List.of("model.layers.0.self_attn.q_proj.bias", "model.layers.1.mlp.shared_expert_gate.weight",
                    "model.layers.1.mlp.shared_expert.down_proj.weight", "model.layers.1.mlp.shared_expert.up_proj.weight")) {
                assertEquals(0.0, r.read(name).amaxNumber().doubleValue(), name);
            }
        }
    }

    @Test
    void qwen2MoeExpertsHoldTheMixtralExpertsWeights() {
        ModelConfig cfg = TinyModel.moe();
        ParameterStore store = TinyModel.store(cfg, DataType.FLOAT, 5);
        Path dir = CheckpointWriter.write(run.resolve("w"), 1, cfg, store, Map.of(), Map.of("step", 1));
        try (SafeTensorsReader r = SafeTensors.open(dir.resolve("model-00001-of-00001.safetensors"))) {
            String mix = "model.layers.1.block_sparse_moe.";
            String qwen = "model.layers.1.mlp.";
            assertEquals(store.param(mix + "gate.weight"), r.read(qwen + "gate.weight"));
            assertEquals(store.param(mix + "experts.2.w1.weight"), r.read(qwen + "experts.2.gate_proj.weight"));
            assertEquals(store.param(mix + "experts.2.w3.weight"), r.read(qwen + "experts.2.up_proj.weight"));
            assertEquals(store.param(mix + "experts.2.w2.weight"), r.read(qwen + "experts.2.down_proj.weight"));
            assertEquals(store.param("model.layers.0.mlp.up_proj.weight"), r.read("model.layers.0.mlp.up_proj.weight"));
        }
    }

    @Test
    void allThreeRoundTripBitExactly() {
        for (ModelConfig cfg : List.of(TinyModel.dense(), TinyModel.allMoe(), TinyModel.moe())) {
            ParameterStore store = TinyModel.store(cfg, DataType.DOUBLE, 7);
            Path dir = CheckpointWriter.write(run.resolve("r" + cfg.moeEvery()), 1, cfg, store, Map.of(),
                    Map.of("step", 1));
            Checkpoint ck = Checkpoint.open(dir);
            assertEquals(cfg, ck.modelConfig());
            ParameterStore loaded = TinyModel.store(cfg, DataType.DOUBLE, 99);
            ck.loadParameters(loaded);
            assertArrayEquals(store.params().toDoubleVector(), loaded.params().toDoubleVector());
        }
    }

    /** Written by hand as the exporter did before mixed models became Qwen2-MoE: Mixtral names and type. */
    @Test
    void aMixedCheckpointInTheOldMixtralNamingStillLoads() {
        ModelConfig cfg = TinyModel.moe();
        ParameterStore store = TinyModel.store(cfg, DataType.FLOAT, 11);
        CheckpointWriter w = CheckpointWriter.stage(run, 4);
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        store.tensors().forEach(t -> tensors.put(t.name(), store.param(t.name())));
        w.writeModelIndex(List.of(w.writeModelShard(0, 1, tensors)));
        writeConfigJson(w, oldMixtralConfig(cfg));
        Path dir = CheckpointWriter.finish(w.stagingDir(), 4, Map.of("step", 4));
        ParameterStore loaded = TinyModel.store(cfg, DataType.FLOAT, 1);
        Checkpoint ck = Checkpoint.open(dir);
        assertEquals(cfg, ck.modelConfig());
        ck.loadParameters(loaded);
        assertArrayEquals(store.params().toFloatVector(), loaded.params().toFloatVector());
    }

    @Test
    void aQwen2MoeCheckpointWithANonzeroSharedExpertIsRefusedNamingIt() {
        ModelConfig cfg = TinyModel.moe();
        ParameterStore store = TinyModel.store(cfg, DataType.FLOAT, 13);
        HfArchitecture arch = HfArchitecture.of(cfg);
        CheckpointWriter w = CheckpointWriter.stage(run, 6);
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        store.tensors().forEach(t -> tensors.put(arch.exportedName(t.name()), store.param(t.name())));
        arch.zeroFillers(cfg).forEach((name, shape) -> tensors.put(name, Nd4j.zeros(DataType.FLOAT, shape)));
        tensors.put("model.layers.1.mlp.shared_expert.down_proj.weight", Nd4j.ones(DataType.FLOAT, C, 1));
        w.writeModelIndex(List.of(w.writeModelShard(0, 1, tensors)));
        w.writeConfig(cfg, DataType.FLOAT);
        Path dir = CheckpointWriter.finish(w.stagingDir(), 6, Map.of("step", 6));
        UserInputException e = assertThrows(UserInputException.class,
                () -> Checkpoint.open(dir).loadParameters(TinyModel.store(cfg, DataType.FLOAT, 1)));
        assertTrue(e.getMessage().contains("nonzero model.layers.1.mlp.shared_expert.down_proj.weight"), e.getMessage());
    }

    @Test
    void aQwen2MoeConfigWhoseDenseLayersTesseraCannotPlaceIsRefused() {
        ObjectNode c = HfModelConfig.toJson(TinyModel.moe(), DataType.FLOAT);
        c.remove(List.of(HfModelConfig.MOE_EVERY, HfModelConfig.DENSE_FF, HfModelConfig.EXPERT_FF));
        assertEquals(TinyModel.moe(), HfModelConfig.fromJson(c, "config.json"), "the standard keys alone suffice");
        c.putArray("mlp_only_layers").add(0).add(1);
        UserInputException e = assertThrows(UserInputException.class, () -> HfModelConfig.fromJson(c, "config.json"));
        assertTrue(e.getMessage().contains("mlp_only_layers makes layer 1 dense"), e.getMessage());
    }

    private static ObjectNode oldMixtralConfig(ModelConfig cfg) {
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.putArray("architectures").add("MixtralForCausalLM");
        n.put("model_type", "mixtral");
        n.put("vocab_size", cfg.vocabSize());
        n.put("hidden_size", cfg.dModel());
        n.put("intermediate_size", cfg.expertDFF());
        n.put("num_hidden_layers", cfg.nLayers());
        n.put("num_attention_heads", cfg.nHeads());
        n.put("num_key_value_heads", cfg.nHeads());
        n.put("rms_norm_eps", cfg.normEps());
        n.put("rope_theta", cfg.ropeTheta());
        n.put("max_position_embeddings", cfg.maxSeqLen());
        n.put("num_local_experts", cfg.nExperts());
        n.put("num_experts_per_tok", cfg.topK());
        n.put("router_aux_loss_coef", cfg.auxCoef());
        n.put("torch_dtype", "float32");
        n.put(HfModelConfig.MOE_EVERY, cfg.moeEvery());
        n.put(HfModelConfig.DENSE_FF, cfg.dFF());
        n.put(HfModelConfig.EXPERT_FF, cfg.expertDFF());
        return n;
    }

    private static void writeConfigJson(CheckpointWriter w, ObjectNode json) {
        try {
            AtomicFiles.writeSynced(w.stagingDir().resolve(CheckpointLayout.CONFIG), Json.MAPPER.writeValueAsBytes(json));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
