package dev.tessera.examples;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.comm.UserInputException;
import dev.tessera.coordinator.TrainResult;
import dev.tessera.coordinator.config.JobConfigLoader;
import dev.tessera.worker.job.JobConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each example program runs as a user runs it, its job file unchanged except for a tiny size: the job it trains is
 * the file's (mesh, gate, data source), and its loss falls.
 */
class ExamplesTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    /** Small enough for CI, long enough for the loss to fall with a short warm-up (a small batch's losses jump). */
    private static final int STEPS = 10;
    private static final List<String> TINY = List.of("train.steps=" + STEPS, "train.batch_size=8", "train.seq_len=64",
            "optimizer.warmup_steps=2", "optimizer.lr=0.001", "eval.every=0", "eval.batches=1", "checkpoint.every=0");

    @TempDir
    Path tmp;

    @Test
    void everyJobFileIsAValidJobAsWritten() throws IOException {
        try (Stream<Path> files = Files.list(ExampleJob.file("quickstart.yaml").getParent())) {
            List<Path> jobs = files.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
            assertEquals(4, jobs.size(), "examples/jobs: " + jobs);
            for (Path job : jobs) {
                JobConfig config = JobConfigLoader.load(job,
                        job.endsWith("own-text.yaml") ? List.of("data.path=" + job) : List.of());
                assertTrue(config.train().steps() > 0, job.toString());
            }
        }
    }

    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void quickStart() throws Exception {
        Path run = tmp.resolve("quickstart");
        JobConfig job = trained(QuickStart.train(args(run)));
        assertEquals(2, job.mesh().dp());
    }

    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void trainOnYourTextReadsEveryFileOfAFolder() throws Exception {
        Path texts = Files.createDirectories(tmp.resolve("texts"));
        StringBuilder prose = new StringBuilder();
        for (int i = 0; i < 400; i++) {
            prose.append("the quick brown fox jumps over the lazy dog number ").append(i % 7).append(".\n");
        }
        Files.writeString(texts.resolve("a.txt"), prose, StandardCharsets.UTF_8);
        Files.writeString(texts.resolve("b.txt"), prose.reverse(), StandardCharsets.UTF_8);
        List<String> args = new ArrayList<>(List.of(texts.toString()));
        args.addAll(List.of(args(tmp.resolve("own-text"))));
        JobConfig job = trained(TrainOnYourText.train(args.toArray(String[]::new)));
        assertEquals(texts.toAbsolutePath().toString(), job.data().path());
    }

    @Test
    void trainOnYourTextNamesAMissingFolder() {
        UserInputException e = assertThrows(UserInputException.class,
                () -> TrainOnYourText.train(new String[] {tmp.resolve("nowhere").toString()}));
        assertTrue(e.getMessage().contains("nowhere: no such file or folder"), e.getMessage());
    }

    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void moeWithExpertParallelism() throws Exception {
        JobConfig job = trained(MoeExpertParallel.train(args(tmp.resolve("moe"))));
        assertEquals(2, job.mesh().ep());
        assertEquals(8, job.model().nExperts());
    }

    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void longContextWithSequenceParallelism() throws Exception {
        JobConfig job = trained(LongContext.train(args(tmp.resolve("long"))));
        assertEquals(2, job.mesh().sp());
    }

    private static String[] args(Path run) {
        List<String> args = new ArrayList<>(List.of(run.toString()));
        args.addAll(TINY);
        return args.toArray(String[]::new);
    }

    /** The run's recorded job, once its loss has fallen over the steps it trained. */
    private static JobConfig trained(TrainResult result) throws IOException {
        Path run = result.runDirectory();
        Map<Long, Double> losses = new TreeMap<>();
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode n = JSON.readTree(line);
            if (n.has("loss")) {
                losses.put(n.get("step").asLong(), n.get("loss").asDouble());
            }
        }
        assertEquals(STEPS, losses.size(), "steps in metrics.jsonl: " + losses);
        double lastThree = (losses.get(STEPS - 2L) + losses.get(STEPS - 1L) + losses.get((long) STEPS)) / 3;
        assertTrue(lastThree < losses.get(1L), "the loss did not fall: " + losses);
        assertTrue(result.finalCheckpoint().isPresent(), "no final checkpoint in " + run);
        return JobConfigLoader.load(run.resolve("config.yaml"), List.of());
    }
}
