package dev.tessera.coordinator.cli;

/** What {@code tessera bench model} runs; injected like {@link TrainAction}. Returns the exit code. */
@FunctionalInterface
public interface BenchModelAction {

    int run(BenchPreset preset, int steps, boolean json) throws Exception;

    BenchModelAction NOT_WIRED = (preset, steps, json) -> {
        throw new IllegalStateException("bench model is not implemented yet (call BenchModelCommand.setAction)");
    };
}
