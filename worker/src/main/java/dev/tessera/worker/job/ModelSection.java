package dev.tessera.worker.job;

import dev.tessera.worker.model.Routing;

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
        @Key("expert_d_ff") int expertDFF,
        double ropeTheta,
        double normEps,
        double auxCoef,
        GateKind gate,
        double capacityFactor,
        double evalCapacityFactor,
        @Key("router_z_coef") double routerZCoef,
        int hyperSize,
        SecondExpert gshardSecondExpert,
        boolean gshardRenormalizeAfterDrop,
        boolean batchPrioritized,
        Dtype dtype) {

    public static ModelSection defaults() {
        return new ModelSection(256, 128, 4, 4, 344, 4, 2, 2, 172, 10000.0, 1.0e-5, 0.01, GateKind.TOPK, 1.25, 2.0, 0.0,
                0, SecondExpert.RANDOM, false, false, Dtype.FLOAT32);
    }

    /** How the MoE layers route. */
    public Routing routing() {
        return new Routing(gate.name().toLowerCase(java.util.Locale.ROOT), capacityFactor, evalCapacityFactor,
                routerZCoef, gate == GateKind.HYPER ? hyperSize : 0,
                gshardSecondExpert.name().toLowerCase(java.util.Locale.ROOT), gshardRenormalizeAfterDrop,
                batchPrioritized);
    }

    /** True when at least one block would route through experts. */
    public boolean hasMoe() {
        return moeEvery > 0 && nExperts > 0;
    }
}
