package dev.tessera.coordinator;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.comm.UserInputException;
import dev.tessera.coordinator.config.JobConfigLoader;
import dev.tessera.coordinator.config.MemoryPlan;
import dev.tessera.coordinator.run.RunDirectory;
import dev.tessera.worker.bench.ModelPreset;
import dev.tessera.worker.io.AtomicFiles;
import dev.tessera.worker.job.ActivationCheckpointing;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.job.SpecFields;
import dev.tessera.worker.parallel.MemoryEstimate;
import dev.tessera.worker.parallel.SequenceScheme;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code tessera bench seq}: training steps of the dense preset's model on long sequences, one sequence-parallel
 * setting at a time, every one on worker processes (also sp 1, so each row's peak resident memory is a fresh
 * process's). Reports the median tokens/s after a warm-up, the fullest worker's measured peak, the planner's
 * estimate, and the fraction of step time attention waited for the other ranks. {@link #longest} finds, for one
 * setting, the longest sequence that trains within a memory budget: the planner proposes, a run confirms.
 */
public final class SeqBench {

    /**
     * One setting: {@code batch} sequences of {@code seq} tokens on {@code dp} x {@code sp} workers, {@code steps}
     * timed after {@code warmup} (a memory probe needs one step and no timing: every buffer exists by its end).
     */
    public record Setup(int seq, int sp, int dp, SequenceScheme mode, int batch, int warmup, int steps,
                        ActivationCheckpointing checkpointing) {

        Setup atSeq(int length) {
            return new Setup(length, sp, dp, mode, batch, warmup, steps, checkpointing);
        }
    }

    public record Result(Setup setup, double tokensPerSecond, long peakBytesPerRank, long estimatedBytesPerRank,
                         double attentionWaitFraction, int steps) {

        public String json() {
            Setup s = setup;
            return String.format(Locale.ROOT, "{\"seq\":%d,\"sp\":%d,\"dp\":%d,\"mode\":\"%s\",\"batch\":%d,"
                            + "\"activation_checkpointing\":\"%s\",\"tokens_per_s\":%.1f,\"peak_bytes_per_rank\":%d,"
                            + "\"estimated_bytes_per_rank\":%d,\"attention_comm_wait_fraction\":%.4f,\"steps\":%d}",
                    s.seq(), s.sp(), s.dp(), modeName(s), s.batch(), SpecFields.yamlName(s.checkpointing()),
                    tokensPerSecond, peakBytesPerRank, estimatedBytesPerRank, attentionWaitFraction, steps);
        }

        public String describe() {
            Setup s = setup;
            return String.format(Locale.ROOT, "seq %d, sp %d (%s), dp %d, batch %d: %.0f tokens/s (median of %d steps),"
                            + " peak %,d MiB per rank (estimated %,d MiB), %.1f%% of step time waiting in attention's"
                            + " exchanges", s.seq(), s.sp(), modeName(s), s.dp(), s.batch(), tokensPerSecond, steps,
                    peakBytesPerRank >> 20, estimatedBytesPerRank >> 20, 100 * attentionWaitFraction);
        }
    }

    private SeqBench() {
    }

    private static String modeName(Setup s) {
        return s.sp() == 1 ? "none" : SpecFields.yamlName(s.mode());
    }

    /** The job of one setting, with {@code memoryMb} per worker. */
    static List<String> sets(Setup s, int memoryMb) {
        List<String> sets = TrainBench.presetSets(ModelPreset.DENSE);
        sets.addAll(List.of("train.batch_size=" + s.batch(), "train.seq_len=" + s.seq(),
                "train.steps=" + (s.steps() + s.warmup()), "optimizer.warmup_steps=0", "eval.every=0", "eval.batches=1",
                "checkpoint.every=0", "mesh.dp=" + s.dp(), "mesh.sp=" + s.sp(),
                "mesh.sp_mode=" + SpecFields.yamlName(s.mode()),
                "train.activation_checkpointing=" + SpecFields.yamlName(s.checkpointing()),
                "launch.worker_memory_mb=" + memoryMb));
        return sets;
    }

    /** The planner's estimate of one worker of {@code s}. */
    static long estimate(Setup s) {
        JobConfig job = JobConfigLoader.load(null, sets(s, Integer.MAX_VALUE / 2));
        return MemoryEstimate.of(MemoryPlan.job(job)).total().longValueExact();
    }

    /** Trains {@code s} on worker processes and summarises its timed steps. */
    public static Result run(Setup s, int memoryMb) throws Exception {
        Path dir = Files.createTempDirectory("tessera-bench-seq-");
        try {
            Trainer.Builder trainer = Trainer.builder().out(dir).log(new PrintStream(OutputStream.nullOutputStream()))
                    .trainWith(request -> new ClusterTraining().run(request));
            sets(s, memoryMb).forEach(trainer::set);
            Path run = trainer.build().fit().runDirectory();
            return summarise(s, run, estimate(s));
        } finally {
            AtomicFiles.deleteRecursively(dir);
        }
    }

    private static Result summarise(Setup s, Path run, long estimate) throws Exception {
        ObjectMapper json = new ObjectMapper();
        List<Double> tokensPerSecond = new ArrayList<>();
        double stepSeconds = 0;
        double waitSeconds = 0;
        for (String line : Files.readAllLines(run.resolve(RunDirectory.METRICS))) {
            JsonNode n = json.readTree(line);
            if (n.has("loss") && n.get("step").asLong() > s.warmup()) {
                tokensPerSecond.add(n.get("tokens_per_s").asDouble());
                stepSeconds += n.get("step_s").asDouble();
                waitSeconds += n.path("attention_comm_wait_s").asDouble(0);
            }
        }
        double[] sorted = tokensPerSecond.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        JsonNode peak = json.readTree(run.resolve(RunDirectory.SUMMARY).toFile()).get("memory").get("peak_rss_bytes");
        return new Result(s, sorted.length == 0 ? 0 : sorted[sorted.length / 2], peak.isNumber() ? peak.asLong() : -1,
                estimate, stepSeconds > 0 ? waitSeconds / stepSeconds : 0, sorted.length);
    }

    /**
     * The longest sequence, in steps of {@code granule} tokens up to {@code limit}, whose planner estimate fits
     * {@code budgetBytes} per worker for the setting of {@code s} (its seq ignored); then trained for one step to
     * confirm the measured peak fits, a granule shorter each time it does not. Returns the confirming run, or null
     * when not even one granule fits.
     */
    public static Result longest(Setup s, long budgetBytes, int granule, int limit) throws Exception {
        int lo = 0;
        int hi = granule;
        while (hi <= limit && fits(s, hi, budgetBytes)) {
            lo = hi;
            hi *= 2;
        }
        hi = Math.min(hi, limit + granule);
        while (hi - lo > granule) {
            int mid = (lo + hi) / 2 / granule * granule;
            if (fits(s, mid, budgetBytes)) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        for (int seq = lo; seq >= granule; seq -= granule) {
            Result r;
            try {
                r = run(s.atSeq(seq), (int) (budgetBytes >> 20));
            } catch (JobFailedException e) {
                continue; // the run did not fit its budget (javacpp's limit, or the heap): a step shorter
            }
            if (r.peakBytesPerRank() >= 0 && r.peakBytesPerRank() <= budgetBytes) {
                return r;
            }
        }
        return null;
    }

    private static boolean fits(Setup s, int seq, long budgetBytes) {
        if (seq % s.mode().partsOf(s.sp()) != 0) {
            return false;
        }
        try {
            return estimate(s.atSeq(seq)) <= budgetBytes;
        } catch (UserInputException e) {
            return false; // a buffer past what the kernels address: longer does not fit either
        }
    }
}
