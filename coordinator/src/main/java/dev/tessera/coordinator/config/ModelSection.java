package dev.tessera.coordinator.config;

import java.util.LinkedHashMap;
import java.util.Map;

/** {@code model:} the decoder's shape (see DESIGN.md, "The model"). */
public record ModelSection(
        int vocabSize,
        int dModel,
        int nLayers,
        int nHeads,
        int dFF,
        int nExperts,
        int topK,
        int moeEvery,
        int expertDFF,
        double ropeTheta,
        double normEps,
        double auxCoef,
        Dtype dtype) {

    public static ModelSection defaults() {
        return new ModelSection(256, 128, 4, 4, 344, 4, 2, 2, 172, 10000.0, 1.0e-5, 0.01, Dtype.FLOAT32);
    }

    /** True when at least one block would route through experts. */
    public boolean hasMoe() {
        return moeEvery > 0 && nExperts > 0;
    }

    static ModelSection read(ConfigValues v) {
        return new ModelSection(
                v.getInt("model.vocab_size"),
                v.getInt("model.d_model"),
                v.getInt("model.n_layers"),
                v.getInt("model.n_heads"),
                v.getInt("model.d_ff"),
                v.getInt("model.n_experts"),
                v.getInt("model.top_k"),
                v.getInt("model.moe_every"),
                v.getInt("model.expert_d_ff"),
                v.getDouble("model.rope_theta"),
                v.getDouble("model.norm_eps"),
                v.getDouble("model.aux_coef"),
                v.getEnum("model.dtype", Dtype.class));
    }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("vocab_size", vocabSize);
        m.put("d_model", dModel);
        m.put("n_layers", nLayers);
        m.put("n_heads", nHeads);
        m.put("d_ff", dFF);
        m.put("n_experts", nExperts);
        m.put("top_k", topK);
        m.put("moe_every", moeEvery);
        m.put("expert_d_ff", expertDFF);
        m.put("rope_theta", ropeTheta);
        m.put("norm_eps", normEps);
        m.put("aux_coef", auxCoef);
        m.put("dtype", ConfigValues.yamlName(dtype));
        return m;
    }
}
