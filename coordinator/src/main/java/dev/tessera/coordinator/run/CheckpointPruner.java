package dev.tessera.coordinator.run;

import dev.tessera.worker.checkpoint.CheckpointRetention;
import dev.tessera.worker.train.StepMetrics;
import dev.tessera.worker.train.TrainingListener;

import java.nio.file.Path;

/** Applies the run's checkpoint retention each time a checkpoint is complete (never before: see {@link #onCheckpoint}). */
final class CheckpointPruner implements TrainingListener {

    private final Path runDir;
    private final CheckpointRetention retention;

    CheckpointPruner(Path runDir, CheckpointRetention retention) {
        this.runDir = runDir;
        this.retention = retention;
    }

    @Override
    public void onStep(StepMetrics metrics) {
    }

    @Override
    public void onEval(long step, double evalLoss) {
    }

    /** Called with a committed checkpoint, so the older ones it replaces are no longer the newest complete state. */
    @Override
    public void onCheckpoint(long step, Path checkpoint) {
        retention.prune(runDir, step);
    }
}
