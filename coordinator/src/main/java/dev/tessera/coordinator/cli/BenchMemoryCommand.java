package dev.tessera.coordinator.cli;

import dev.tessera.coordinator.MemoryBench;
import dev.tessera.worker.bench.ModelPreset;
import dev.tessera.worker.job.OptimizerKind;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code tessera bench memory}: measured per-rank model-state memory for optimizers x ZeRO stages x world sizes. */
@Command(name = "memory", mixinStandardHelpOptions = true,
        description = "Measure the fullest rank's parameter, gradient and optimizer-state bytes of a preset for each "
                + "optimizer, ZeRO stage and world size (one short training job each).")
public final class BenchMemoryCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--preset", required = true, paramLabel = "dense|moe|wide", description = "Model shape.")
    ModelPreset preset;

    @Option(names = "--optimizer", split = ",", paramLabel = "adamw|adafactor|came",
            description = "Optimizers, comma-separated (default: all three).")
    List<OptimizerKind> optimizers;

    @Option(names = "--stage", split = ",", paramLabel = "S",
            description = "ZeRO stages 0-3, comma-separated (default: 0,1,2,3).")
    List<Integer> stages;

    @Option(names = "--world", split = ",", paramLabel = "W",
            description = "Data-parallel world sizes, each dividing the global batch of 8, comma-separated "
                    + "(default: 1,2,4).")
    List<Integer> worlds;

    @Option(names = "--json", description = "One JSON object per line.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        List<OptimizerKind> o = optimizers == null ? Arrays.asList(OptimizerKind.values()) : optimizers;
        List<Integer> s = stages == null ? List.of(0, 1, 2, 3) : stages;
        List<Integer> w = worlds == null ? List.of(1, 2, 4) : worlds;
        for (int stage : s) {
            if (stage < 0 || stage > 3) {
                throw new ParameterException(spec.commandLine(), "--stage must be 0, 1, 2 or 3 (got " + stage + ")");
            }
        }
        for (int world : w) {
            if (world < 1 || preset.batch() % world != 0) {
                throw new ParameterException(spec.commandLine(), "--world must divide the global batch of "
                        + preset.batch() + " (got " + world + ")");
            }
        }
        return MemoryBench.print(preset, o, s, w, json, spec.commandLine().getOut());
    }
}
