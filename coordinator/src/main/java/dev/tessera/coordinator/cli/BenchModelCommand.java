package dev.tessera.coordinator.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.util.Objects;
import java.util.concurrent.Callable;

/** {@code tessera bench model}: time forward+backward steps of a preset model shape. */
@Command(name = "model", mixinStandardHelpOptions = true,
        description = "Time training steps of a preset model on this machine.")
public final class BenchModelCommand implements Callable<Integer> {

    private static volatile BenchModelAction action = BenchModelAction.NOT_WIRED;

    @Spec
    CommandSpec spec;

    @Option(names = "--preset", required = true, paramLabel = "dense|moe|wide", description = "Model shape.")
    BenchPreset preset;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "20",
            description = "Timed steps (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--json", description = "Print one JSON object instead of a table.")
    boolean json;

    public static void setAction(BenchModelAction benchAction) {
        action = Objects.requireNonNull(benchAction, "benchAction");
    }

    @Override
    public Integer call() throws Exception {
        if (steps < 1) {
            throw new ParameterException(spec.commandLine(), "--steps must be >= 1 (got " + steps + ")");
        }
        return action.run(preset, steps, json);
    }
}
