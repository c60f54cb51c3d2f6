package dev.tessera.worker.train;

import java.nio.file.Path;

/**
 * Hears a run's progress: the run directory's writers, the progress bar, and a {@code Trainer}'s callers. Every
 * method does nothing unless overridden, so a listener implements only what it needs. Calls come from one thread
 * at a time; an exception thrown here stops the run.
 */
public interface TrainingListener {

    /** Hears nothing. */
    TrainingListener NONE = new TrainingListener() {
    };

    /** Training begins after {@code firstStep} completed steps (0 for a fresh run), up to {@code totalSteps}. */
    default void onStart(long firstStep, long totalSteps) {
    }

    /**
     * Step {@code step}'s update is done. Its {@link #onStep} comes later, once its loss is summed over the
     * replicas, which runs while the next step computes.
     */
    default void onUpdate(long step) {
    }

    /** A step finished: its loss, learning rate, gradient norm and throughput. */
    default void onStep(StepMetrics metrics) {
    }

    /** The held-out loss after {@code step}. */
    default void onEval(long step, double evalLoss) {
    }

    /** A complete checkpoint of {@code step} is in {@code directory}. */
    default void onCheckpoint(long step, Path directory) {
    }
}
