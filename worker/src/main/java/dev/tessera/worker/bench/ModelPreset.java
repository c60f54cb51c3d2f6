package dev.tessera.worker.bench;

import dev.tessera.worker.model.ModelConfig;
import java.util.Locale;

/** The benchmark shapes of the foundation issue, compared against PyTorch 1.13 on the same machine. */
public enum ModelPreset {
    /** vocab 256, d_model 256, 4 layers, 8 heads, d_ff 688, seq 256, batch 8. */
    DENSE(new ModelConfig(256, 256, 4, 8, 688, 0, 0, 0, 0, 10000.0, 1e-5, 0.0, 256)),
    /** As dense, with every FFN an MoE of 8 experts, top-2, d_ff 344 per expert. */
    MOE(new ModelConfig(256, 256, 4, 8, 688, 8, 2, 1, 344, 10000.0, 1e-5, 0.01, 256)),
    /** d_model 512, d_ff 1376, otherwise as dense. */
    WIDE(new ModelConfig(256, 512, 4, 8, 1376, 0, 0, 0, 0, 10000.0, 1e-5, 0.0, 256));

    public static final int BATCH = 8;
    public static final int SEQ = 256;

    private final ModelConfig config;

    ModelPreset(ModelConfig config) {
        this.config = config;
    }

    public ModelConfig config() {
        return config;
    }

    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * Model FLOPs per trained token, counted as PyTorch-side MFU figures are: 6 per active matmul
     * weight (forward 2, backward 4; the embedding lookup is free) plus causal attention
     * {@code 6 * layers * seq * d_model} (scores and values, the unmasked half, forward and backward).
     */
    public static double flopsPerToken(ModelConfig c, int seq) {
        double d = c.dModel();
        double perLayerAttention = 4 * d * d;
        double matmulWeights = c.vocabSize() * d; // lm_head
        for (int layer = 0; layer < c.nLayers(); layer++) {
            double ffn = c.isMoeBlock(layer)
                    ? c.nExperts() * d + c.topK() * 3 * d * c.expertDFF()
                    : 3 * d * c.dFF();
            matmulWeights += perLayerAttention + ffn;
        }
        return 6 * matmulWeights + 6.0 * c.nLayers() * seq * d;
    }
}
