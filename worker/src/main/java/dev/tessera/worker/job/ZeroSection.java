package dev.tessera.worker.job;

/**
 * {@code zero:} how far ZeRO shards the model state over each data-parallel group: 0 = replicated (plain data
 * parallelism), 1 = optimizer state, 2 = also gradients, 3 = also parameters. A single process has nothing to
 * shard it over, so there the stage changes nothing.
 */
public record ZeroSection(int stage) {

    public static ZeroSection defaults() {
        return new ZeroSection(0);
    }
}
