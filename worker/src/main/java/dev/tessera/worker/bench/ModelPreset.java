package dev.tessera.worker.bench;

import dev.tessera.worker.model.ModelConfig;
import java.util.Locale;

/**
 * The benchmark shapes: dense, moe and wide from the foundation issue, compared against PyTorch 1.13 on the same
 * machine, and large, a Llama-style model of about a billion parameters. Each has the global batch and sequence
 * length its benches run, and how many steps they leave out before timing (the JIT's warm-up; one step of the
 * large model is long enough to compile everything).
 */
public enum ModelPreset {
    /** vocab 256, d_model 256, 4 layers, 8 heads, d_ff 688, seq 256, batch 8. */
    DENSE(new ModelConfig(256, 256, 4, 8, 688, 0, 0, 0, 0, 10000.0, 1e-5, 0.0, 256), 8, 256, 3, 30, 4096, 300),
    /** As dense, with every FFN an MoE of 8 experts, top-2, d_ff 344 per expert. */
    MOE(new ModelConfig(256, 256, 4, 8, 688, 8, 2, 1, 344, 10000.0, 1e-5, 0.01, 256), 8, 256, 3, 30, 4096, 300),
    /** d_model 512, d_ff 1376, otherwise as dense. */
    WIDE(new ModelConfig(256, 512, 4, 8, 1376, 0, 0, 0, 0, 10000.0, 1e-5, 0.0, 256), 8, 256, 3, 30, 4096, 300),
    /**
     * 926 M parameters: d_model 2048, 18 layers, 16 heads, SwiGLU 5632, vocab 256, seq 512, batch 2. A ZeRO-3 rank of
     * two builds and trains with its shard resident, not a whole replica; the final checkpoint still gathers one, which
     * sets the measured peak (9.3 GiB with CAME, docs/PERFORMANCE.md), so 10 GiB. A step takes over two minutes on
     * two cores, more beside other work, and is reported only once the next one has run, so the silence limit is
     * half an hour.
     */
    LARGE(new ModelConfig(256, 2048, 18, 16, 5632, 0, 0, 0, 0, 10000.0, 1e-5, 0.0, 512), 2, 512, 1, 1, 10240, 1800);

    private final ModelConfig config;
    private final int batch;
    private final int seq;
    private final int modelBenchWarmup;
    private final int trainBenchWarmup;
    private final int trainBenchWorkerMemoryMb;
    private final int trainBenchSilenceS;

    ModelPreset(ModelConfig config, int batch, int seq, int modelBenchWarmup, int trainBenchWarmup,
                int trainBenchWorkerMemoryMb, int trainBenchSilenceS) {
        this.config = config;
        this.batch = batch;
        this.seq = seq;
        this.modelBenchWarmup = modelBenchWarmup;
        this.trainBenchWarmup = trainBenchWarmup;
        this.trainBenchWorkerMemoryMb = trainBenchWorkerMemoryMb;
        this.trainBenchSilenceS = trainBenchSilenceS;
    }

    public ModelConfig config() {
        return config;
    }

    /** The global batch, in sequences. */
    public int batch() {
        return batch;
    }

    public int seq() {
        return seq;
    }

    /** Steps {@code bench model} runs before timing. */
    public int modelBenchWarmup() {
        return modelBenchWarmup;
    }

    /**
     * Steps {@code bench train} leaves out. A worker that has one core compiles the kernels for about 25 steps
     * (its compiler threads share that core with training), so the small presets' first steps are well below
     * the rest; the bench reports the steady state.
     */
    public int trainBenchWarmup() {
        return trainBenchWarmup;
    }

    /** {@code launch.worker_memory_mb} of {@code bench train}'s workers: what one rank of the preset may use. */
    public int trainBenchWorkerMemoryMb() {
        return trainBenchWorkerMemoryMb;
    }

    /** {@code fault.dead_after_s} of {@code bench train}: how long its workers may go without a report. */
    public int trainBenchSilenceS() {
        return trainBenchSilenceS;
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
