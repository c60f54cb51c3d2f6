package dev.tessera.examples;

import dev.tessera.coordinator.TrainResult;
import dev.tessera.coordinator.cli.ErrorReporter;

import java.nio.file.Path;

/**
 * A Mixtral-style model whose experts are split over two ranks, GShard-routed with capacity and all-to-all
 * dispatch ({@code examples/jobs/moe-expert-parallel.yaml}); the per-layer routing figures land in metrics.jsonl.
 * <pre>
 *   ./tessera example MoeExpertParallel [run-directory] [key=value ...]
 * </pre>
 */
public final class MoeExpertParallel {

    private MoeExpertParallel() {
    }

    public static void main(String[] args) {
        ErrorReporter.exitWith(() -> ExampleJob.report(train(args)));
    }

    /** Trains the example's job with the program's arguments; {@link #main} reports the result. */
    static TrainResult train(String[] args) throws Exception {
        Path out = Path.of(args.length > 0 ? args[0] : "runs/moe-expert-parallel");
        return ExampleJob.train("moe-expert-parallel.yaml", out, ExampleJob.sets(args, 1));
    }
}
