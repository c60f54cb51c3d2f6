package dev.tessera.worker.job;

/** {@code train:} loop length, global batch and seed. */
public record TrainSection(int steps, int batchSize, int seqLen, long seed) {

    public static TrainSection defaults() {
        return new TrainSection(1500, 16, 128, 42);
    }
}
