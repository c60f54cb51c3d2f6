package dev.tessera.examples;

import dev.tessera.coordinator.TrainResult;
import dev.tessera.coordinator.cli.ErrorReporter;

import java.nio.file.Path;

/**
 * The quick start from Java: {@code examples/jobs/quickstart.yaml} (the embedded default model and corpus, two
 * data-parallel workers, CAME with ZeRO-1).
 * <pre>
 *   ./tessera example QuickStart [run-directory] [key=value ...]
 * </pre>
 */
public final class QuickStart {

    private QuickStart() {
    }

    public static void main(String[] args) {
        ErrorReporter.exitWith(() -> ExampleJob.report(train(args)));
    }

    /** Trains the example's job with the program's arguments; {@link #main} reports the result. */
    static TrainResult train(String[] args) throws Exception {
        Path out = Path.of(args.length > 0 ? args[0] : "runs/quickstart");
        return ExampleJob.train("quickstart.yaml", out, ExampleJob.sets(args, 1));
    }
}
