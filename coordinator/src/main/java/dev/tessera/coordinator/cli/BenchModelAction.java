package dev.tessera.coordinator.cli;

import dev.tessera.worker.bench.ModelPreset;

/** What {@code tessera bench model} runs; {@link Main} injects it, so tests can check the options alone. */
@FunctionalInterface
public interface BenchModelAction {

    int run(ModelPreset preset, int steps, boolean json) throws Exception;

}
