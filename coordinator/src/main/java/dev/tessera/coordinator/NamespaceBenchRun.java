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

/**
 * What {@code bench compression} and {@code bench co2} share: one job of the dense preset on the embedded corpus,
 * two workers on two fresh network-namespace hosts whose links run at {@code rate} ({@link NamespaceHosts}; "none":
 * unlimited), {@code warmup + steps} steps with one evaluation at the end and no checkpoints, and the timed steps'
 * figures read back from the run's metrics.jsonl.
 */
final class NamespaceBenchRun {

    /**
     * The timed steps (those after the warm-up) of one run: the data bytes rank 0 handed to the transport, the
     * median of the steps' tokens/s, the tokens over the summed step time, the summed comm wait over the summed
     * step time, and the last eval loss.
     */
    record Measured(long wireBytes, double medianTokensPerSecond, double overallTokensPerSecond,
                    double commWaitFraction, double finalEvalLoss) {
    }

    private NamespaceBenchRun() {
    }

    /**
     * Runs the job with {@code sets} applied after the common ones, in a temporary directory named from
     * {@code tempPrefix} that is deleted afterwards.
     */
    static Measured run(String tempPrefix, String rate, int warmup, int steps, List<String> sets) throws Exception {
        Path dir = Files.createTempDirectory(tempPrefix);
        List<String> all = TrainBench.presetSets(ModelPreset.DENSE);
        all.addAll(List.of("train.steps=" + (warmup + steps), "optimizer.warmup_steps=0",
                "eval.every=" + (warmup + steps), "eval.batches=4", "checkpoint.every=0", "mesh.dp=2"));
        all.addAll(sets);
        try (NamespaceHosts hosts = NamespaceHosts.create(2, rate.equals("none") ? null : rate)) {
            Trainer.Builder trainer = Trainer.builder().out(dir).log(new PrintStream(OutputStream.nullOutputStream()))
                    .trainWith(new ClusterTraining(job -> hosts.launcher(job.launch().workerMemoryMb())));
            all.forEach(trainer::set);
            Path run = trainer.build().fit().runDirectory();
            return measure(run, warmup);
        } finally {
            AtomicFiles.deleteRecursively(dir);
        }
    }

    private static Measured measure(Path run, int warmup) throws Exception {
        ObjectMapper json = new ObjectMapper();
        List<Double> tokensPerSecond = new ArrayList<>();
        long wireBytes = 0;
        double tokens = 0;
        double stepSeconds = 0;
        double waitSeconds = 0;
        double evalLoss = Double.NaN;
        for (String line : Files.readAllLines(run.resolve(RunDirectory.METRICS))) {
            JsonNode n = json.readTree(line);
            if (n.has("eval_loss")) {
                evalLoss = n.get("eval_loss").asDouble();
            }
            if (n.has("loss") && n.get("step").asLong() > warmup) {
                double perSecond = n.get("tokens_per_s").asDouble();
                double seconds = n.get("step_s").asDouble();
                tokensPerSecond.add(perSecond);
                tokens += perSecond * seconds; // the step's tokens: tokens_per_s is the step's tokens over step_s
                wireBytes += n.get("wire_bytes").asLong();
                stepSeconds += seconds;
                waitSeconds += n.get("comm_wait_s").asDouble();
            }
        }
        double[] sorted = tokensPerSecond.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return new Measured(wireBytes, sorted.length == 0 ? 0 : sorted[sorted.length / 2],
                stepSeconds > 0 ? tokens / stepSeconds : 0, stepSeconds > 0 ? waitSeconds / stepSeconds : 0,
                evalLoss);
    }
}
