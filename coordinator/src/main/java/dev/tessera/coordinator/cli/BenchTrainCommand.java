package dev.tessera.coordinator.cli;

import dev.tessera.coordinator.TrainBench;
import dev.tessera.worker.bench.ModelPreset;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.util.concurrent.Callable;

/** {@code tessera bench train}: data-parallel training steps of a preset on worker processes. */
@Command(name = "train", mixinStandardHelpOptions = true,
        description = "Time data-parallel training steps of a preset (global batch 8) on worker processes.")
public final class BenchTrainCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--preset", required = true, paramLabel = "dense|moe|wide", description = "Model shape.")
    ModelPreset preset;

    @Option(names = "--dp", paramLabel = "N", defaultValue = "1",
            description = "Data-parallel worker processes; 1 trains in this process (default: ${DEFAULT-VALUE}).")
    int dp;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "20",
            description = "Timed steps after a 30-step warm-up (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--json", description = "Print one JSON object instead of a line of text.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        if (steps < 1) {
            throw new ParameterException(spec.commandLine(), "--steps must be >= 1 (got " + steps + ")");
        }
        if (dp < 1 || ModelPreset.BATCH % dp != 0) {
            throw new ParameterException(spec.commandLine(), "--dp must divide the global batch of "
                    + ModelPreset.BATCH + " (got " + dp + ")");
        }
        return TrainBench.print(preset, dp, steps, json, System.out);
    }
}
