package dev.tessera.coordinator.cli;

import dev.tessera.worker.bench.ModelBench;
import dev.tessera.worker.bench.ModelPreset;
import dev.tessera.worker.job.ActivationCheckpointing;
import dev.tessera.worker.model.RecomputePolicy;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.util.concurrent.Callable;

/** {@code tessera bench model}: time forward+backward steps of a preset model shape. */
@Command(name = "model", mixinStandardHelpOptions = true,
        description = "Time training steps of a preset model on this machine.")
public final class BenchModelCommand implements Callable<Integer> {

    /** Times the preset in this process with {@link ModelBench}. */
    static final BenchModelAction DEFAULT_ACTION = BenchModelCommand::runModelBench;

    private final BenchModelAction action;

    @Spec
    CommandSpec spec;

    @Option(names = "--preset", required = true, paramLabel = "dense|moe|wide|large", description = "Model shape.")
    ModelPreset preset;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "20",
            description = "Timed steps (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--activation-checkpointing", paramLabel = "none|blocks|every_k", defaultValue = "none",
            description = "Which blocks recompute their activations in backward, as train.activation_checkpointing"
                    + " (default: ${DEFAULT-VALUE}).")
    ActivationCheckpointing checkpointing;

    @Option(names = "--recompute-every", paramLabel = "K", defaultValue = "2",
            description = "The k of every_k (default: ${DEFAULT-VALUE}).")
    int recomputeEvery;

    @Option(names = "--json", description = "Print one JSON object instead of a table.")
    boolean json;

    BenchModelCommand(BenchModelAction action) {
        this.action = action;
    }

    @Override
    public Integer call() throws Exception {
        if (steps < 1) {
            throw new ParameterException(spec.commandLine(), "--steps must be >= 1 (got " + steps + ")");
        }
        if (recomputeEvery < 1) {
            throw new ParameterException(spec.commandLine(), "--recompute-every must be >= 1 (got " + recomputeEvery
                    + ")");
        }
        return action.run(preset, steps, ActivationCheckpointing.policy(checkpointing, recomputeEvery), json);
    }

    private static int runModelBench(ModelPreset preset, int steps, RecomputePolicy recompute, boolean json) {
        ModelBench.Result r = ModelBench.run(preset, steps, recompute);
        if (json) {
            System.out.println(r.json());
        } else {
            System.out.printf("preset %s: %,d params, %.1f ms/step, %.0f tokens/s, %.1f model GFLOP/s"
                            + " = %.1f%% of sgemm peak %.1f GFLOP/s (median of %d steps); activations %,d MiB; peak RSS %,d MiB;"
                            + " OpenBLAS kernel %s (chosen by %s)%n",
                    r.preset(), r.params(), r.msPerStep(), r.tokensPerSecond(), r.modelGflops(),
                    100 * r.peakFraction(), r.sgemmGflops(), r.steps(), r.activationBytes() >> 20, r.peakRssBytes() >> 20, r.blas().kernel(),
                    r.blas().chosenBy());
        }
        return 0;
    }
}
