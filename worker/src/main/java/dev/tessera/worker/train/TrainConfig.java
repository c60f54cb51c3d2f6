package dev.tessera.worker.train;

/** Hyperparameters of the training loop (resolved from the job config). */
public record TrainConfig(
        int steps,
        int batchSize,
        int seqLen,
        long seed,
        double lr,
        double minLr,
        int warmupSteps,
        double gradClip,
        int evalEvery,
        int evalBatches,
        int checkpointEvery) {
}
