package dev.tessera.examples;

import dev.tessera.coordinator.TrainResult;
import dev.tessera.coordinator.cli.ErrorReporter;

import java.nio.file.Path;

/**
 * 2048-token sequences cut over two sequence-parallel ranks, with exact causal ring attention across them
 * ({@code examples/jobs/long-context.yaml}).
 * <pre>
 *   ./tessera example LongContext [run-directory] [key=value ...]
 * </pre>
 */
public final class LongContext {

    private LongContext() {
    }

    public static void main(String[] args) {
        ErrorReporter.exitWith(() -> ExampleJob.report(train(args)));
    }

    /** Trains the example's job with the program's arguments; {@link #main} reports the result. */
    static TrainResult train(String[] args) throws Exception {
        Path out = Path.of(args.length > 0 ? args[0] : "runs/long-context");
        return ExampleJob.train("long-context.yaml", out, ExampleJob.sets(args, 1));
    }
}
