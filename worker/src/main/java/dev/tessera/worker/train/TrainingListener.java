package dev.tessera.worker.train;

import java.nio.file.Path;

/** Receives progress from the training loop (run directory writers, progress bar). */
public interface TrainingListener {

    default void onStart(long firstStep, long totalSteps) {
    }

    void onStep(StepMetrics metrics);

    void onEval(long step, double evalLoss);

    default void onCheckpoint(long step, Path directory) {
    }
}
