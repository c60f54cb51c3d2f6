package dev.tessera.coordinator;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.coordinator.run.RunDirectory;
import dev.tessera.worker.bench.ModelPreset;
import dev.tessera.worker.io.AtomicFiles;
import dev.tessera.worker.model.ModelConfig;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code tessera bench train}: whole training steps of a preset on a data-parallel mesh of worker processes
 * (or in this process for dp 1), global batch 8 as the PyTorch DDP anchor. Reports the median tokens/s of
 * the steps after a warm-up, and the fraction of step time spent waiting for gradient reductions after
 * backward (communication that was not overlapped).
 */
public final class TrainBench {

    /**
     * Steps left out before timing. The JIT takes about 25 steps to compile the kernels of a worker that
     * has one core (its compiler threads share that core with training), so the first steps are well below
     * the rest; the bench reports the steady state. Rarely called paths keep compiling for about a hundred
     * steps, a few percent of a core, so longer runs are slightly faster still (docs/PERFORMANCE.md).
     */
    static final int WARMUP_STEPS = 30;

    public record Result(String preset, int dp, int steps, double tokensPerSecond, double commWaitFraction) {

        public String json() {
            return String.format(Locale.ROOT, "{\"preset\":\"%s\",\"dp\":%d,\"tokens_per_s\":%.1f,"
                    + "\"comm_wait_fraction\":%.4f,\"steps\":%d}", preset, dp, tokensPerSecond, commWaitFraction, steps);
        }
    }

    private TrainBench() {
    }

    public static Result run(ModelPreset preset, int dp, int steps) throws Exception {
        Path dir = Files.createTempDirectory("tessera-bench-train-");
        try {
            Path run = runQuietly(sets(preset, dp, steps), dir);
            return summarise(preset, dp, run.resolve(RunDirectory.METRICS));
        } finally {
            AtomicFiles.deleteRecursively(dir);
        }
    }

    private static List<String> sets(ModelPreset preset, int dp, int steps) {
        List<String> sets = presetSets(preset);
        sets.addAll(List.of("train.steps=" + (steps + WARMUP_STEPS), "optimizer.warmup_steps=0", "eval.every=0",
                "eval.batches=1", "mesh.dp=" + dp));
        return sets;
    }

    /** The {@code --set} values of a preset's model, global batch and sequence length. */
    static List<String> presetSets(ModelPreset preset) {
        ModelConfig m = preset.config();
        return new ArrayList<>(List.of("model.d_model=" + m.dModel(), "model.n_layers=" + m.nLayers(),
                "model.n_heads=" + m.nHeads(), "model.d_ff=" + m.dFF(), "model.n_experts=" + m.nExperts(),
                "model.top_k=" + m.topK(), "model.moe_every=" + m.moeEvery(), "model.expert_d_ff=" + m.expertDFF(),
                "model.aux_coef=" + m.auxCoef(), "train.batch_size=" + ModelPreset.BATCH,
                "train.seq_len=" + ModelPreset.SEQ));
    }

    /**
     * Trains the defaults with {@code sets} into the empty directory {@code dir} as {@code tessera train} would (in
     * this process for a mesh of one, else on worker processes), without the run's own lines: the bench prints its
     * results.
     */
    static Path runQuietly(List<String> sets, Path dir) throws Exception {
        Trainer.Builder trainer = Trainer.builder().out(dir).log(new PrintStream(OutputStream.nullOutputStream()));
        sets.forEach(trainer::set);
        return trainer.build().fit().runDirectory();
    }

    private static Result summarise(ModelPreset preset, int dp, Path metrics) throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<Double> tokensPerSecond = new ArrayList<>();
        double stepSeconds = 0;
        double waitSeconds = 0;
        for (String line : Files.readAllLines(metrics)) {
            JsonNode n = json.readTree(line);
            if (n.has("loss") && n.get("step").asLong() > WARMUP_STEPS) {
                tokensPerSecond.add(n.get("tokens_per_s").asDouble());
                stepSeconds += n.get("step_s").asDouble();
                waitSeconds += n.get("comm_wait_s").asDouble();
            }
        }
        double[] sorted = tokensPerSecond.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        double median = sorted.length == 0 ? 0 : sorted[sorted.length / 2];
        return new Result(preset.id(), dp, sorted.length, median, stepSeconds > 0 ? waitSeconds / stepSeconds : 0);
    }

    static String describe(Result r) {
        return String.format(Locale.ROOT, "preset %s, dp %d: %.0f tokens/s (median of %d steps), %.1f%% of step"
                + " time waiting for gradient reductions", r.preset(), r.dp(), r.tokensPerSecond(), r.steps(),
                100 * r.commWaitFraction());
    }

    /** For the CLI: prints the result, as JSON when asked. */
    public static int print(ModelPreset preset, int dp, int steps, boolean json, PrintStream out) throws Exception {
        Result r = run(preset, dp, steps);
        out.println(json ? r.json() : describe(r));
        return 0;
    }
}
