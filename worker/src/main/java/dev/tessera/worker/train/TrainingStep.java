package dev.tessera.worker.train;

import dev.tessera.worker.model.LossParts;
import dev.tessera.worker.model.MoeStats;

/**
 * One optimizer step of a replica on its slice of the global batch: the strategy the {@link TrainingLoop} runs
 * every step. {@link SynchronousStep} reduces the gradients every step; an asynchronous step (CO2: local steps
 * with an outer all-reduce that overlaps the next ones) sits beside it.
 */
public interface TrainingStep {

    /**
     * What a step measured: the replica's loss parts, the global gradient norm before clipping, the
     * nanoseconds spent waiting for communication that compute did not hide, and how the MoE layers routed.
     */
    record Outcome(LossParts loss, double gradNorm, long commWaitNanos, MoeStats moe) {
    }

    /** Trains {@code step} (from 1) on this replica's {@code inputs}/{@code targets} at learning rate {@code lr}. */
    Outcome run(long step, int[] inputs, int[] targets, double lr);

    /**
     * Runs an evaluation with the parameters the model is judged by: the live ones, except where the replicas hold
     * local parameters between synchronisations (CO2: the outer parameters every rank agreed on last).
     */
    default void withEvaluatedParameters(Runnable evaluation) {
        evaluation.run();
    }
}
