package dev.tessera.coordinator.cli;

import dev.tessera.coordinator.TrainAction;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/** Runs {@link Main#run} with captured stdout and stderr. */
record CliRunner(int exitCode, String out, String err) {

    static CliRunner run(String... args) {
        return run(TrainAction.DEFAULT, BenchModelCommand.DEFAULT_ACTION, args);
    }

    /** With {@code train} as what training does, to check the layers above it. */
    static CliRunner training(TrainAction train, String... args) {
        return run(train, BenchModelCommand.DEFAULT_ACTION, args);
    }

    static CliRunner benching(BenchModelAction benchModel, String... args) {
        return run(TrainAction.DEFAULT, benchModel, args);
    }

    private static CliRunner run(TrainAction train, BenchModelAction benchModel, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8), train, benchModel, args);
        return new CliRunner(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }
}
