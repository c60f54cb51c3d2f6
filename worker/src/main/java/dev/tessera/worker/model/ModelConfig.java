package dev.tessera.worker.model;

/**
 * Shape of a Llama/Mixtral-style decoder. Block {@code i} (0-based) has an MoE FFN when
 * {@code moeEvery > 0 && (i + 1) % moeEvery == 0}; otherwise a dense SwiGLU FFN of width {@code dFF}.
 * Each expert is a SwiGLU of width {@code expertDFF}.
 */
public record ModelConfig(
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
        int maxSeqLen) {

    public int headDim() {
        return dModel / nHeads;
    }

    public boolean isMoeBlock(int layer) {
        return moeEvery > 0 && nExperts > 0 && (layer + 1) % moeEvery == 0;
    }

    /** A dense model, the shape of the "dense" preset when given its numbers. */
    public static ModelConfig dense(int vocab, int dModel, int nLayers, int nHeads, int dFF, int maxSeqLen) {
        return new ModelConfig(vocab, dModel, nLayers, nHeads, dFF, 0, 0, 0, 0, 10000.0, 1e-5, 0.0, maxSeqLen);
    }
}
