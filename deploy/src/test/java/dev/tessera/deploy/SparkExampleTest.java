package dev.tessera.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The examples submitted to Spark with {@code deploy/spark/tessera-submit --class}: the quick-start program
 * (examples/QuickStart) unchanged, whose Trainer finds the driver's session with {@code launch.launcher=spark} and runs
 * its workers as the tasks of a barrier stage, as {@code ./tessera example QuickStart} runs them as local processes;
 * and the Spark job that trains on text it prepares as a {@code Dataset<String>} (examples/spark/SparkTextCorpus).
 */
@Timeout(600)
class SparkExampleTest {

    private static final List<String> TINY = List.of("train.steps=6", "optimizer.warmup_steps=2",
            "train.batch_size=4", "train.seq_len=32", "eval.every=0", "eval.batches=1", "checkpoint.every=0",
            "model.d_model=32", "model.n_layers=2");

    @TempDir
    Path tmp;

    @Test
    void theQuickStartProgramTrainsOnSparkUnchanged() throws Exception {
        Path checkout = Path.of("").toAbsolutePath().getParent(); // surefire runs in deploy/
        Path run = tmp.resolve("run");
        DistributionTest.Result result = DistributionTest.run(checkout, concat(List.of(
                checkout.resolve("deploy/spark/tessera-submit").toString(), "--master", "local[2]",
                "--class", "dev.tessera.examples.QuickStart", "--", run.toString(), "launch.launcher=spark"),
                TINY));
        assertEquals(0, result.code(), result.out() + result.err());
        assertTrue(result.err().contains("Running Spark version"), "the driver is a Spark application: "
                + result.err());
        assertTrue(result.out().contains("trained 6 steps"), result.out());
        assertTrue(Files.readString(run.resolve("config.yaml")).contains("launcher: spark"),
                "config.yaml records the Spark launcher");
        long steps = Files.readAllLines(run.resolve("metrics.jsonl")).stream().filter(l -> l.contains("\"loss\""))
                .count();
        assertEquals(6, steps, "a loss per step in metrics.jsonl");
        assertTrue(Files.isDirectory(run.resolve("checkpoints/step-0000006")), "the final checkpoint");
    }

    @Test
    void aSparkJobTrainsOnTheTextItPreparesAsADataset() throws Exception {
        Path checkout = Path.of("").toAbsolutePath().getParent();
        Path texts = Files.createDirectories(tmp.resolve("texts"));
        List<String> expected = new ArrayList<>();
        for (int file = 0; file < 3; file++) {
            StringBuilder content = new StringBuilder();
            for (int line = 0; line < 60; line++) {
                String sentence = String.format(Locale.ROOT, "file %d line %d: the quick brown fox jumps over the"
                        + " lazy dog %d times.", file, line, line * 7 % 13);
                expected.add(sentence);
                content.append(line % 5 == 0 ? "\n   \n" : "").append("  ").append(sentence).append(" \t\n");
            }
            Files.writeString(texts.resolve("part-" + file + ".txt"), content);
        }
        Path run = tmp.resolve("run");

        DistributionTest.Result result = DistributionTest.run(checkout, concat(List.of(
                checkout.resolve("deploy/spark/tessera-submit").toString(), "--master", "local[2]",
                "--class", "dev.tessera.examples.spark.SparkTextCorpus", "--", texts.toString(), run.toString()),
                TINY));

        assertEquals(0, result.code(), result.out() + result.err());
        assertTrue(result.out().contains("trained 6 steps"), result.out());
        Path prepared = tmp.resolve("run.txt");
        List<String> lines = new ArrayList<>(Files.readAllLines(prepared));
        lines.sort(null);
        expected.sort(null);
        assertEquals(expected, lines, "the Dataset's rows, stripped and without the empty ones, one per line");
        String config = Files.readString(run.resolve("config.yaml"));
        assertTrue(config.contains("launcher: spark"), config);
        assertTrue(config.contains("path: " + prepared), "the workers trained on the prepared text: " + config);
        assertEquals(6, Files.readAllLines(run.resolve("metrics.jsonl")).stream()
                .filter(l -> l.contains("\"loss\"")).count(), "a loss per step");
        try (var left = Files.list(tmp)) {
            assertEquals(List.of("run", "run.txt", "texts"), left.map(p -> p.getFileName().toString()).sorted()
                    .toList(), "no temporary file left beside the prepared text");
        }
    }

    @Test
    void missingTextIsAClearErrorBeforeSparkStarts() throws Exception {
        Path checkout = Path.of("").toAbsolutePath().getParent();
        Path missing = tmp.resolve("no-such-texts");

        DistributionTest.Result result = DistributionTest.run(checkout, List.of(
                checkout.resolve("deploy/spark/tessera-submit").toString(), "--master", "local[1]",
                "--class", "dev.tessera.examples.spark.SparkTextCorpus", "--", missing.toString(),
                tmp.resolve("run").toString()));

        assertEquals(2, result.code(), result.out() + result.err());
        assertTrue(result.err().contains(missing + ": no such file or folder"), result.err());
        assertTrue(!result.err().contains("Running Spark version"), "refused before Spark starts: " + result.err());
        assertTrue(!result.err().contains("\tat "), "no stack trace: " + result.err());
        assertTrue(Files.notExists(tmp.resolve("run")) && Files.notExists(tmp.resolve("run.txt")),
                "nothing written");
    }

    private static List<String> concat(List<String> first, List<String> second) {
        List<String> all = new ArrayList<>(first);
        all.addAll(second);
        return all;
    }
}
