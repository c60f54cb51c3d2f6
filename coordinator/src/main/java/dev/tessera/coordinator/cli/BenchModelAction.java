package dev.tessera.coordinator.cli;

import dev.tessera.worker.bench.ModelPreset;
import dev.tessera.worker.model.RecomputePolicy;

/** What {@code tessera bench model} runs; {@link Main} injects it, so tests can check the options alone. */
@FunctionalInterface
public interface BenchModelAction {

    int run(ModelPreset preset, int steps, RecomputePolicy recompute, boolean json) throws Exception;

}
