package dev.tessera.coordinator;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.coordinator.launch.NamespaceHosts;
import dev.tessera.coordinator.run.RunDirectory;
import dev.tessera.worker.bench.ModelPreset;
import dev.tessera.worker.io.AtomicFiles;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code tessera bench compression}: the dense preset on the embedded corpus, two workers on two network-namespace
 * hosts whose links run at {@code rate} ({@link NamespaceHosts}), the same steps for each gradient-compression
 * method. Per method: the data bytes rank 0 handed to the transport over the timed steps (counted at the transport),
 * their ratio to the uncompressed run's, the final eval loss, the median tokens/s and the fraction of step time
 * spent waiting for gradients after backward.
 */
public final class CompressionBench {

    /** A method as the bench names it, and the {@code compression.*} settings that make it. */
    public record Method(String name, List<String> sets) {
    }

    /** The methods, in the order the issue lists them. */
    public static List<Method> methods(int steps) {
        String period = "compression.lgreco_period=" + Math.max(1, steps / 4);
        return List.of(
                new Method("none", List.of("compression.method=none")),
                new Method("topk", List.of("compression.method=topk", "compression.topk_density=0.01")),
                new Method("topk-lgreco", List.of("compression.method=topk", "compression.topk_density=0.01",
                        "compression.lgreco=true", period)),
                new Method("powersgd", List.of("compression.method=powersgd", "compression.powersgd_rank=4")),
                new Method("powersgd-lgreco", List.of("compression.method=powersgd", "compression.powersgd_rank=4",
                        "compression.lgreco=true", period)),
                new Method("qsgd", List.of("compression.method=qsgd", "compression.qsgd_bits=4")),
                new Method("qsgd-lgreco", List.of("compression.method=qsgd", "compression.qsgd_bits=4",
                        "compression.lgreco=true", period)),
                new Method("fedzip", List.of("compression.method=fedzip", "compression.fedzip_keep=0.005",
                        "compression.fedzip_encoding=gap", "compression.fedzip_error_feedback=true")));
    }

    public record Result(String method, String rate, long wireBytes, double ratio, double finalEvalLoss,
                         double tokensPerSecond, double commWaitFraction) {

        public String json() {
            return String.format(Locale.ROOT, "{\"method\":\"%s\",\"rate\":\"%s\",\"wire_bytes\":%d,\"ratio\":%s,"
                            + "\"final_eval_loss\":%.4f,\"tokens_per_s\":%.1f,\"comm_wait_fraction\":%.4f}", method,
                    rate, wireBytes, Double.isNaN(ratio) ? "null" : String.format(Locale.ROOT, "%.2f", ratio),
                    finalEvalLoss, tokensPerSecond, commWaitFraction);
        }

        public String describe() {
            return String.format(Locale.ROOT, "%-12s at %s: %,d bytes sent by rank 0 (%s), eval loss %.4f, %.0f"
                            + " tokens/s, %.1f%% of step time waiting for gradients", method, rate, wireBytes,
                    Double.isNaN(ratio) ? "no uncompressed run to compare" : String.format(Locale.ROOT,
                            "%.1fx fewer than uncompressed", ratio), finalEvalLoss, tokensPerSecond,
                    100 * commWaitFraction);
        }
    }

    private CompressionBench() {
    }

    /**
     * Runs {@code method} for {@code warmup + steps} steps on fresh hosts at {@code rate} ("none": unlimited);
     * {@code uncompressedBytes} (NaN: unknown) is the uncompressed run's wire bytes for the ratio.
     */
    public static Result run(Method method, String rate, int warmup, int steps, double uncompressedBytes)
            throws Exception {
        Path dir = Files.createTempDirectory("tessera-bench-compression-");
        List<String> sets = TrainBench.presetSets(ModelPreset.DENSE);
        sets.addAll(List.of("train.steps=" + (warmup + steps), "optimizer.warmup_steps=0",
                "eval.every=" + (warmup + steps), "eval.batches=4", "checkpoint.every=0", "mesh.dp=2",
                "compression.min_elements=10000"));
        sets.addAll(method.sets());
        try (NamespaceHosts hosts = NamespaceHosts.create(2, rate.equals("none") ? null : rate)) {
            Trainer.Builder trainer = Trainer.builder().out(dir).log(new PrintStream(OutputStream.nullOutputStream()))
                    .trainWith(new ClusterTraining(job -> hosts.launcher(job.launch().workerMemoryMb())));
            sets.forEach(trainer::set);
            Path run = trainer.build().fit().runDirectory();
            return summarise(method.name(), rate, run, warmup, uncompressedBytes);
        } finally {
            AtomicFiles.deleteRecursively(dir);
        }
    }

    private static Result summarise(String method, String rate, Path run, int warmup, double uncompressedBytes)
            throws Exception {
        ObjectMapper json = new ObjectMapper();
        List<Double> tokensPerSecond = new ArrayList<>();
        long wireBytes = 0;
        double stepSeconds = 0;
        double waitSeconds = 0;
        double evalLoss = Double.NaN;
        for (String line : Files.readAllLines(run.resolve(RunDirectory.METRICS))) {
            JsonNode n = json.readTree(line);
            if (n.has("eval_loss")) {
                evalLoss = n.get("eval_loss").asDouble();
            }
            if (n.has("loss") && n.get("step").asLong() > warmup) {
                tokensPerSecond.add(n.get("tokens_per_s").asDouble());
                wireBytes += n.get("wire_bytes").asLong();
                stepSeconds += n.get("step_s").asDouble();
                waitSeconds += n.get("comm_wait_s").asDouble();
            }
        }
        double[] sorted = tokensPerSecond.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return new Result(method, rate, wireBytes, uncompressedBytes / wireBytes, evalLoss,
                sorted.length == 0 ? 0 : sorted[sorted.length / 2], stepSeconds > 0 ? waitSeconds / stepSeconds : 0);
    }
}
