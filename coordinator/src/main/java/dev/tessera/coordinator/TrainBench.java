package dev.tessera.coordinator;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.coordinator.config.JobConfigLoader;
import dev.tessera.coordinator.config.MemoryPlan;
import dev.tessera.coordinator.run.RunDirectory;
import dev.tessera.worker.bench.ModelBench;
import dev.tessera.worker.bench.ModelPreset;
import dev.tessera.worker.io.AtomicFiles;
import dev.tessera.worker.job.ActivationCheckpointing;
import dev.tessera.worker.job.Dtype;
import dev.tessera.worker.job.GateKind;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.job.OptimizerKind;
import dev.tessera.worker.job.SpecFields;
import dev.tessera.worker.model.ExpertShard;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.Transformer;
import dev.tessera.worker.parallel.MemoryEstimate;
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
 * (or in this process for dp 1), at the preset's global batch (8 for the small ones, as the PyTorch DDP anchor).
 * Reports the median tokens/s of the steps after the preset's warm-up, what that is in model GFLOP/s against an
 * sgemm peak measured in this process, the fraction of step time spent waiting for gradient reductions after
 * backward (communication that was not overlapped), and the fullest worker's peak resident memory next to what
 * the planner estimated for one worker ({@link MemoryPlan#job}), the figure it refuses a job by.
 */
public final class TrainBench {

    /**
     * @param peakRssBytes          the largest peak resident memory of a process that trained (-1 if unknown)
     * @param estimatedPeakRssBytes the planner's estimate of one worker's peak ({@link MemoryEstimate#total})
     */
    public record Result(String preset, int dp, int zeroStage, OptimizerKind optimizer,
                         ActivationCheckpointing checkpointing, int recomputeEvery, int steps,
                         double tokensPerSecond, double modelGflops, double sgemmGflops, double commWaitFraction,
                         long peakRssBytes, long estimatedPeakRssBytes, GateKind gate, long expertBytesPerRank,
                         int ep, double allToAllBytesPerStep, double allToAllWaitFraction, boolean overlap) {

        public String json() {
            return String.format(Locale.ROOT, "{\"preset\":\"%s\",\"dp\":%d,\"zero_stage\":%d,\"optimizer\":\"%s\","
                            + "\"activation_checkpointing\":\"%s\",\"recompute_every\":%d,"
                            + "\"tokens_per_s\":%.1f,\"model_gflops\":%.2f,\"sgemm_gflops\":%.2f,"
                            + "\"peak_fraction\":%.4f,\"comm_wait_fraction\":%.4f,\"peak_rss_bytes\":%d,"
                            + "\"estimated_peak_rss_bytes\":%d,\"steps\":%d,\"gate\":\"%s\","
                            + "\"expert_bytes_per_rank\":%d,\"ep\":%d,\"all_to_all_bytes_per_step\":%.0f,"
                            + "\"all_to_all_wait_fraction\":%.4f,\"overlap\":%b}",
                    preset, dp, zeroStage, SpecFields.yamlName(optimizer), SpecFields.yamlName(checkpointing),
                    recomputeEvery, tokensPerSecond, modelGflops, sgemmGflops, modelGflops / sgemmGflops,
                    commWaitFraction, peakRssBytes, estimatedPeakRssBytes, steps, SpecFields.yamlName(gate),
                    expertBytesPerRank, ep, allToAllBytesPerStep, allToAllWaitFraction, overlap);
        }
    }

    /**
     * What one bench run trains: the preset on {@code dp} workers with these settings; {@code overlap} is
     * {@code moe.overlap}.
     */
    public record Setup(ModelPreset preset, int dp, int zeroStage, OptimizerKind optimizer,
                        ActivationCheckpointing checkpointing, int recomputeEvery, int steps, GateKind gate, int ep,
                        boolean overlap) {

        /** The expert exchange in one piece. */
        public Setup(ModelPreset preset, int dp, int zeroStage, OptimizerKind optimizer,
                     ActivationCheckpointing checkpointing, int recomputeEvery, int steps, GateKind gate, int ep) {
            this(preset, dp, zeroStage, optimizer, checkpointing, recomputeEvery, steps, gate, ep, false);
        }

        /** Every worker holding every expert. */
        public Setup(ModelPreset preset, int dp, int zeroStage, OptimizerKind optimizer,
                     ActivationCheckpointing checkpointing, int recomputeEvery, int steps, GateKind gate) {
            this(preset, dp, zeroStage, optimizer, checkpointing, recomputeEvery, steps, gate, 1);
        }

        /** The preset's own routing (Mixtral's top-k). */
        public Setup(ModelPreset preset, int dp, int zeroStage, OptimizerKind optimizer,
                     ActivationCheckpointing checkpointing, int recomputeEvery, int steps) {
            this(preset, dp, zeroStage, optimizer, checkpointing, recomputeEvery, steps, GateKind.TOPK);
        }
    }

    private TrainBench() {
    }

    public static Result run(Setup setup) throws Exception {
        Path dir = Files.createTempDirectory("tessera-bench-train-");
        try {
            List<String> sets = sets(setup);
            JobConfig job = JobConfigLoader.load(null, sets);
            long estimate = MemoryEstimate.of(MemoryPlan.job(job)).total().longValueExact();
            Path run = runQuietly(sets, dir);
            double sgemm = ModelBench.sgemmGflops(); // after training: the workers have the cores to themselves
            return summarise(setup, run, sgemm, estimate, expertBytesPerRank(job), job.toModelConfig());
        } finally {
            AtomicFiles.deleteRecursively(dir);
        }
    }

    static List<String> sets(Setup s) {
        ModelPreset preset = s.preset();
        List<String> sets = presetSets(preset);
        sets.addAll(List.of("train.steps=" + (s.steps() + preset.trainBenchWarmup()), "optimizer.warmup_steps=0",
                "eval.every=0", "eval.batches=1", "checkpoint.every=0", "mesh.dp=" + s.dp(),
                "zero.stage=" + s.zeroStage(), "mesh.ep=" + s.ep(), "moe.overlap=" + s.overlap(),
                "launch.worker_memory_mb=" + preset.trainBenchWorkerMemoryMb(),
                "fault.dead_after_s=" + preset.trainBenchSilenceS(),
                "optimizer.name=" + SpecFields.yamlName(s.optimizer()),
                "train.activation_checkpointing=" + SpecFields.yamlName(s.checkpointing()),
                "train.recompute_every=" + s.recomputeEvery(), "model.gate=" + SpecFields.yamlName(s.gate())));
        switch (s.gate()) {
            case SWITCH -> sets.add("model.top_k=1");
            case GSHARD -> sets.add("model.top_k=2");
            case HYPER -> sets.add("model.hyper_size=256"); // the paper's width
            default -> { }
        }
        return sets;
    }

    /** The bytes of one rank's expert parameters: its 1/ep share of them. */
    static long expertBytesPerRank(JobConfig job) {
        ModelConfig m = job.toModelConfig();
        long width = job.model().dtype() == Dtype.FLOAT64 ? 8 : 4;
        long bytes = 0;
        for (ParameterStore.Tensor t : Transformer.layout(m).tensors()) {
            if (ExpertShard.isExpertTensor(t.name())) {
                bytes += t.numel() * width;
            }
        }
        return bytes / job.mesh().ep();
    }

    /** The {@code --set} values of a preset's model, global batch and sequence length. */
    static List<String> presetSets(ModelPreset preset) {
        ModelConfig m = preset.config();
        return new ArrayList<>(List.of("model.d_model=" + m.dModel(), "model.n_layers=" + m.nLayers(),
                "model.n_heads=" + m.nHeads(), "model.d_ff=" + m.dFF(), "model.n_experts=" + m.nExperts(),
                "model.top_k=" + m.topK(), "model.moe_every=" + m.moeEvery(), "model.expert_d_ff=" + m.expertDFF(),
                "model.aux_coef=" + m.auxCoef(), "train.batch_size=" + preset.batch(),
                "train.seq_len=" + preset.seq()));
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

    /** {@code model}: the shape trained, whose top_k (1 for switch) sets the expert FLOPs per token. */
    private static Result summarise(Setup setup, Path run, double sgemmGflops, long estimate, long expertBytes,
                                    ModelConfig model) throws IOException {
        ModelPreset preset = setup.preset();
        ObjectMapper json = new ObjectMapper();
        List<Double> tokensPerSecond = new ArrayList<>();
        double stepSeconds = 0;
        double waitSeconds = 0;
        double allToAllBytes = 0;
        double allToAllSeconds = 0;
        for (String line : Files.readAllLines(run.resolve(RunDirectory.METRICS))) {
            JsonNode n = json.readTree(line);
            if (n.has("loss") && n.get("step").asLong() > preset.trainBenchWarmup()) {
                tokensPerSecond.add(n.get("tokens_per_s").asDouble());
                stepSeconds += n.get("step_s").asDouble();
                waitSeconds += n.get("comm_wait_s").asDouble();
                for (JsonNode layer : n.path("moe")) {
                    allToAllBytes += layer.get("all_to_all_bytes").asDouble();
                    allToAllSeconds += layer.get("all_to_all_wait_s").asDouble();
                }
            }
        }
        double[] sorted = tokensPerSecond.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        double median = sorted.length == 0 ? 0 : sorted[sorted.length / 2];
        JsonNode peakRss = json.readTree(run.resolve(RunDirectory.SUMMARY).toFile()).get("memory").get("peak_rss_bytes");
        double gflops = median * ModelPreset.flopsPerToken(model, preset.seq()) / 1e9;
        return new Result(preset.id(), setup.dp(), setup.zeroStage(), setup.optimizer(), setup.checkpointing(),
                setup.recomputeEvery(), sorted.length, median, gflops, sgemmGflops,
                stepSeconds > 0 ? waitSeconds / stepSeconds : 0, peakRss.isNumber() ? peakRss.asLong() : -1, estimate,
                setup.gate(), expertBytes, setup.ep(), sorted.length == 0 ? 0 : allToAllBytes / sorted.length,
                stepSeconds > 0 ? allToAllSeconds / stepSeconds : 0, setup.overlap());
    }

    static String describe(Result r) {
        return String.format(Locale.ROOT, "preset %s, dp %d, ep %d%s, ZeRO %d, %s, activation checkpointing %s:"
                        + " %.0f tokens/s (median of %d steps), %.1f model GFLOP/s = %.1f%% of sgemm peak"
                        + " %.1f GFLOP/s, %.1f%% of step time waiting for gradient reductions; peak RSS %,d MiB"
                        + " (fullest process), estimated %,d MiB",
                r.preset(), r.dp(), r.ep(), r.overlap() ? " (overlapped)" : "", r.zeroStage(),
                SpecFields.yamlName(r.optimizer()), SpecFields.yamlName(r.checkpointing()), r.tokensPerSecond(),
                r.steps(), r.modelGflops(), 100 * r.modelGflops() / r.sgemmGflops(), r.sgemmGflops(),
                100 * r.commWaitFraction(), r.peakRssBytes() >> 20, r.estimatedPeakRssBytes() >> 20);
    }

    /** For the CLI: prints the result, as JSON when asked. */
    public static int print(Setup setup, boolean json, PrintStream out) throws Exception {
        Result r = run(setup);
        out.println(json ? r.json() : describe(r));
        return 0;
    }
}
