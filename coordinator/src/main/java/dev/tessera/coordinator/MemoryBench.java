package dev.tessera.coordinator;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.coordinator.run.RunDirectory;
import dev.tessera.worker.bench.ModelPreset;
import dev.tessera.worker.io.AtomicFiles;
import dev.tessera.worker.job.OptimizerKind;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * {@code tessera bench memory}: the measured memory of one rank's model state (parameters, gradients, optimizer
 * state) for optimizers x ZeRO stages x world sizes. Every row is a real {@code tessera train} job of the preset
 * (global batch 8, {@value #STEPS} steps, evaluation and checkpoint only at the end) on a data-parallel mesh of
 * {@code world} worker processes, one job after the other; its numbers are the fullest rank's (each kind
 * separately: under ZeRO the ranks' shards differ), read from summary.json's {@code memory}: the peak resident bytes of the flat parameter and gradient buffers while training, and the bytes
 * of optimizer state the rank allocated. A world of 1 trains in this process, where ZeRO has nothing to shard
 * over, so its rows are the same for every stage.
 */
public final class MemoryBench {

    /** Step 1 starts from buffers written whole at initialisation and is not counted, so step 2 is measured. */
    static final int STEPS = 2;
    /** First ports of the first job; job {@code i} uses these plus {@code 10 i}, so no job reuses another's. */
    static final int HAZELCAST_PORT = 7400;
    static final int AERON_PORT = 43400;

    /** The model state of the fullest rank in one configuration. */
    public record Row(String preset, OptimizerKind optimizer, int stage, int world, long params, long paramBytes,
                      long gradBytes, long stateBytes) {

        public String optimizerName() {
            return optimizer.name().toLowerCase(Locale.ROOT);
        }

        /** Bytes of the whole model's parameters in float32: what one replica holds without ZeRO. */
        public long paramBytesTotal() {
            return params * Float.BYTES;
        }

        public long totalBytes() {
            return paramBytes + gradBytes + stateBytes;
        }

        public String json() {
            return String.format(Locale.ROOT, "{\"preset\":\"%s\",\"optimizer\":\"%s\",\"stage\":%d,\"world\":%d,"
                    + "\"param_bytes\":%d,\"grad_bytes\":%d,\"state_bytes\":%d,\"total_bytes\":%d,\"params\":%d,"
                    + "\"param_bytes_total\":%d}", preset, optimizerName(), stage, world, paramBytes, gradBytes,
                    stateBytes, totalBytes(), params, paramBytesTotal());
        }

        String tableLine() {
            return String.format(Locale.ROOT, "%-9s %5d %5d %11.2f %11.2f %11.2f %11.2f", optimizerName(), stage,
                    world, mib(paramBytes), mib(gradBytes), mib(stateBytes), mib(totalBytes()));
        }
    }

    private MemoryBench() {
    }

    /** Trains the preset once with {@code optimizer}, ZeRO {@code stage} and {@code world} ranks; {@code index} picks the ports. */
    public static Row run(ModelPreset preset, OptimizerKind optimizer, int stage, int world, int index)
            throws Exception {
        Path dir = Files.createTempDirectory("tessera-bench-memory-");
        try {
            List<String> sets = TrainBench.presetSets(preset);
            sets.addAll(List.of("train.steps=" + STEPS, "optimizer.warmup_steps=0", "eval.every=0", "eval.batches=1",
                    "checkpoint.every=0", "optimizer.name=" + optimizer.name().toLowerCase(Locale.ROOT),
                    "zero.stage=" + stage, "mesh.dp=" + world, "launch.hazelcast_port=" + (HAZELCAST_PORT + 10 * index),
                    "launch.aeron_port=" + (AERON_PORT + 10 * index)));
            Path run = TrainBench.runQuietly(sets, dir);
            return read(preset, optimizer, stage, world, run.resolve(RunDirectory.SUMMARY));
        } finally {
            AtomicFiles.deleteRecursively(dir);
        }
    }

    private static Row read(ModelPreset preset, OptimizerKind optimizer, int stage, int world, Path summaryFile)
            throws IOException {
        JsonNode summary = new ObjectMapper().readTree(summaryFile.toFile());
        JsonNode memory = summary.get("memory");
        if (memory == null || !memory.get("param_bytes").isNumber() || !memory.get("grad_bytes").isNumber()) {
            throw new IllegalStateException(summaryFile + " holds no measured memory");
        }
        return new Row(preset.id(), optimizer, stage, world, summary.get("params").asLong(),
                memory.get("param_bytes").asLong(), memory.get("grad_bytes").asLong(),
                memory.get("state_bytes").asLong());
    }

    /** For the CLI: runs every combination in order and prints each row as it is measured. */
    public static int print(ModelPreset preset, List<OptimizerKind> optimizers, List<Integer> stages,
                            List<Integer> worlds, boolean json, PrintWriter out) throws Exception {
        if (!json) {
            out.printf(Locale.ROOT, "preset %s: measured model state of the fullest rank per configuration (MiB; parameters and"
                    + " gradients: peak resident, float32; %d steps, global batch %d)%n", preset.id(), STEPS,
                    preset.batch());
            out.printf(Locale.ROOT, "%-9s %5s %5s %11s %11s %11s %11s%n", "optimizer", "stage", "world", "params",
                    "grads", "opt state", "total");
        }
        int index = 0;
        for (OptimizerKind optimizer : optimizers) {
            for (int stage : stages) {
                for (int world : worlds) {
                    Row row = run(preset, optimizer, stage, world, index++);
                    out.println(json ? row.json() : row.tableLine());
                    out.flush();
                    System.gc(); // a world of 1 trained in this process: let its native buffers go before the next
                }
            }
        }
        return 0;
    }

    private static double mib(long bytes) {
        return bytes / (1024.0 * 1024.0);
    }
}
