package dev.tessera.worker.job;

import dev.tessera.worker.model.RecomputePolicy;

/**
 * {@code train:} loop length, global batch and seed, and activation checkpointing: {@code recompute_every} is the
 * k of {@code activation_checkpointing: every_k}.
 */
public record TrainSection(int steps, int batchSize, int seqLen, long seed,
                           ActivationCheckpointing activationCheckpointing, int recomputeEvery) {

    public static TrainSection defaults() {
        return new TrainSection(1500, 16, 128, 42, ActivationCheckpointing.NONE, 2);
    }

    /** Which blocks of the model recompute their activations. */
    public RecomputePolicy recomputePolicy() {
        return ActivationCheckpointing.policy(activationCheckpointing, recomputeEvery);
    }
}
