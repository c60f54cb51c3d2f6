package dev.tessera.coordinator.cli;

import dev.tessera.coordinator.TrainBench;
import dev.tessera.worker.bench.ModelPreset;
import dev.tessera.worker.job.ActivationCheckpointing;
import dev.tessera.worker.job.GateKind;
import dev.tessera.worker.job.OptimizerKind;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.util.concurrent.Callable;

/** {@code tessera bench train}: data-parallel training steps of a preset on worker processes. */
@Command(name = "train", mixinStandardHelpOptions = true,
        description = "Time data-parallel training steps of a preset (its global batch) on worker processes.")
public final class BenchTrainCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--preset", required = true, paramLabel = "dense|moe|wide|large", description = "Model shape.")
    ModelPreset preset;

    @Option(names = "--dp", paramLabel = "N", defaultValue = "1",
            description = "Data-parallel worker processes; 1 trains in this process (default: ${DEFAULT-VALUE}).")
    int dp;

    @Option(names = "--ep", paramLabel = "N", defaultValue = "1",
            description = "Expert-parallel degree, as mesh.ep: each worker holds 1/N of the experts and tokens reach"
                    + " them by all-to-all; must divide --dp (default: ${DEFAULT-VALUE}).")
    int ep;

    @Option(names = "--overlap", description = "As moe.overlap: each expert exchange in a chunk per held expert,"
            + " overlapping the experts' compute (with --ep > 1).")
    boolean overlap;

    @Option(names = "--zero", paramLabel = "STAGE", defaultValue = "0",
            description = "ZeRO stage 0-3, as zero.stage (default: ${DEFAULT-VALUE}).")
    int zeroStage;

    @Option(names = "--optimizer", paramLabel = "adamw|adafactor|came", defaultValue = "adamw",
            description = "As optimizer.name (default: ${DEFAULT-VALUE}).")
    OptimizerKind optimizer;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "20",
            description = "Timed steps after the preset's warm-up (30 steps; 1 for large) (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--activation-checkpointing", paramLabel = "none|blocks|every_k", defaultValue = "none",
            description = "Which blocks recompute their activations in backward, as train.activation_checkpointing"
                    + " (default: ${DEFAULT-VALUE}).")
    ActivationCheckpointing checkpointing;

    @Option(names = "--recompute-every", paramLabel = "K", defaultValue = "2",
            description = "The k of every_k, as train.recompute_every (default: ${DEFAULT-VALUE}).")
    int recomputeEvery;

    @Option(names = "--gate", paramLabel = "topk|switch|gshard|hyper", defaultValue = "topk",
            description = "How MoE layers route, as model.gate (switch with top_k 1, hyper with hyper_size 256)"
                    + " (default: ${DEFAULT-VALUE}).")
    GateKind gate;

    @Option(names = "--json", description = "Print one JSON object instead of a line of text.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        if (steps < 1) {
            throw new ParameterException(spec.commandLine(), "--steps must be >= 1 (got " + steps + ")");
        }
        if (dp < 1 || preset.batch() % dp != 0) {
            throw new ParameterException(spec.commandLine(), "--dp must divide the global batch of "
                    + preset.batch() + " of preset " + preset.id() + " (got " + dp + ")");
        }
        if (ep < 1 || dp % ep != 0) {
            throw new ParameterException(spec.commandLine(), "--ep must divide --dp (" + dp + "), got " + ep);
        }
        if (zeroStage < 0 || zeroStage > 3) {
            throw new ParameterException(spec.commandLine(), "--zero must be 0, 1, 2 or 3 (got " + zeroStage + ")");
        }
        if (recomputeEvery < 1) {
            throw new ParameterException(spec.commandLine(), "--recompute-every must be >= 1 (got " + recomputeEvery
                    + ")");
        }
        return TrainBench.print(new TrainBench.Setup(preset, dp, zeroStage, optimizer, checkpointing, recomputeEvery,
                steps, gate, ep, overlap), json, System.out);
    }
}
