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
        int maxSeqLen,
        Routing routing) {

    /** A model whose MoE layers, if any, route as Mixtral does ({@link Routing#DEFAULT}). */
    public ModelConfig(int vocabSize, int dModel, int nLayers, int nHeads, int dFF, int nExperts, int topK,
                       int moeEvery, int expertDFF, double ropeTheta, double normEps, double auxCoef, int maxSeqLen) {
        this(vocabSize, dModel, nLayers, nHeads, dFF, nExperts, topK, moeEvery, expertDFF, ropeTheta, normEps, auxCoef,
                maxSeqLen, Routing.DEFAULT);
    }

    /** This shape with MoE layers routed by {@code r}. */
    public ModelConfig withRouting(Routing r) {
        return new ModelConfig(vocabSize, dModel, nLayers, nHeads, dFF, nExperts, topK, moeEvery, expertDFF, ropeTheta,
                normEps, auxCoef, maxSeqLen, r);
    }

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
