package dev.tessera.worker.job;

import dev.tessera.worker.model.RecomputePolicy;

/** {@code train.activation_checkpointing}: which blocks recompute their activations in backward. */
public enum ActivationCheckpointing {
    /** Every block keeps its activations from forward to backward. */
    NONE,
    /** Every block keeps only its input and recomputes the rest in backward. */
    BLOCKS,
    /** One block in every {@code train.recompute_every} (blocks 0, k, 2k, ...) recomputes. */
    EVERY_K;

    /** The blocks that recompute under {@code mode}, {@code every} being the k of {@link #EVERY_K}. */
    public static RecomputePolicy policy(ActivationCheckpointing mode, int every) {
        return switch (mode) {
            case NONE -> RecomputePolicy.NONE;
            case BLOCKS -> RecomputePolicy.EVERY_BLOCK;
            case EVERY_K -> new RecomputePolicy(every);
        };
    }
}
