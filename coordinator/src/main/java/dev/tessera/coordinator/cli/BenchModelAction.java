package dev.tessera.coordinator.cli;

import dev.tessera.worker.bench.ModelPreset;

/** What {@code tessera bench model} runs; injected like {@link dev.tessera.coordinator.TrainAction}. Returns the exit code. */
@FunctionalInterface
public interface BenchModelAction {

    int run(ModelPreset preset, int steps, boolean json) throws Exception;

}
