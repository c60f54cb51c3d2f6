package dev.tessera.worker.parallel;

import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.Transformer;

/**
 * What one rank of a mesh needs in memory, estimated before anything is launched so that planning can refuse a
 * job that would not fit. Parameters and gradients are exact (the layout is counted, not guessed); activations
 * follow what the layers allocate per token, rounded up; the runtime term is the JVM plus ND4J's natives
 * (STACK.md: about 350 MB resident after start).
 */
public record MemoryEstimate(long paramBytes, long gradBytes, long optimizerStateBytes, long activationBytes,
                             long runtimeBytes) {

    static final long RUNTIME_BYTES = 512L << 20;

    public long total() {
        return paramBytes + gradBytes + optimizerStateBytes + activationBytes + runtimeBytes;
    }

    /**
     * @param stateValuesPerParam optimizer state values per parameter held by this rank (AdamW 2; the factored
     *                            optimizers report much less)
     * @param zeroStage           ZeRO shards the optimizer state (1), also the gradients (2) and also the
     *                            parameters (3) over the data-parallel ranks (§3 of ALGORITHMS.md; stage 3 keeps
     *                            the gathered block in use besides, which the estimate leaves out)
     */
    public static MemoryEstimate of(ModelConfig cfg, int dtypeBytes, Mesh mesh, int globalBatch, int seq,
                                    double stateValuesPerParam, int zeroStage) {
        long dense = 0;
        long expert = 0;
        for (ParameterStore.Tensor t : Transformer.layout(cfg).tensors()) {
            if (t.name().contains(".experts.")) {
                expert += t.numel();
            } else {
                dense += t.numel();
            }
        }
        long perRank = dense + expert / mesh.ep();
        long bytes = perRank * dtypeBytes;
        long tokens = (long) (globalBatch / mesh.dp()) * (seq / mesh.sp());
        // Each class is sharded over the ranks that replicate it: dense over all W, experts over W / ep.
        long sharded = (dense / mesh.world() + expert / mesh.ep() / Math.max(1, mesh.world() / mesh.ep())) * dtypeBytes;
        long state = (long) Math.ceil((zeroStage >= 1 ? sharded / dtypeBytes : perRank) * stateValuesPerParam)
                * dtypeBytes;
        return new MemoryEstimate(zeroStage >= 3 ? sharded : bytes, zeroStage >= 2 ? sharded : bytes, state,
                activationValues(cfg, tokens, globalBatch / mesh.dp(), seq / mesh.sp(), seq)
                * dtypeBytes, RUNTIME_BYTES);
    }

    /**
     * Per token and block: the block input, two norm outputs, q, k, v, the attention output and its projection
     * (8 C), the FFN's gate, up and activated hidden (3 F; for MoE every local expert's buffers count, as they
     * are sized for all tokens) and its output (C). The attention scores [B, H, T/sp, T] are shared by the blocks.
     * Logits and their gradient are 2 V per token.
     */
    private static long activationValues(ModelConfig cfg, long tokens, long sequences, int segment, int seq) {
        long perTokenPerBlock = 0;
        for (int l = 0; l < cfg.nLayers(); l++) {
            long ffn = cfg.isMoeBlock(l) ? (long) cfg.nExperts() * cfg.expertDFF() + cfg.nExperts() : cfg.dFF();
            perTokenPerBlock += 9L * cfg.dModel() + 3 * ffn;
        }
        long scores = sequences * cfg.nHeads() * (long) segment * seq;
        return tokens * (perTokenPerBlock + 2L * cfg.vocabSize() + 4L * cfg.dModel()) + scores;
    }
}
