package dev.tessera.coordinator.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.coordinator.cli.Main;
import dev.tessera.worker.checkpoint.Checkpoint;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * deploy/spark/tessera-submit in {@code local[2]}: the driver coordinates, two barrier tasks run the two data-parallel
 * workers.
 */
@Timeout(300)
class SparkLocalTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    /** A dense model small enough for two workers beside Spark on two cores. */
    static List<String> tinyJob(Path out, int steps, String... extra) {
        List<String> args = new ArrayList<>(List.of("--out", out.toString()));
        for (String set : List.of("launch.launcher=spark", "model.d_model=32", "model.n_layers=2", "model.n_heads=4",
                "model.d_ff=64", "model.moe_every=0", "train.steps=" + steps, "train.batch_size=8",
                "train.seq_len=32", "optimizer.warmup_steps=2", "eval.every=0", "mesh.dp=2",
                "launch.worker_memory_mb=768")) {
            args.add("--set");
            args.add(set);
        }
        args.addAll(List.of(extra));
        return args;
    }

    @Test
    void sparkSubmitInLocalModeTrainsTwoDataParallelWorkers() throws Exception {
        Path out = tmp.resolve("run");
        Path log = tmp.resolve("submit.log");
        Process submit = SparkProcesses.submit(tmp, "local[2]", List.of(), tinyJob(out, 12, "--set",
                "checkpoint.every=6"), log);
        try {
            assertTrue(submit.waitFor(240, TimeUnit.SECONDS), "spark-submit did not end within 240 s: "
                    + Files.readString(log));
            assertEquals(0, submit.exitValue(), Files.readString(log));
        } finally {
            SparkProcesses.stop(submit);
        }
        SparkProcesses.assertNothingLeft(out);
        Map<Long, Double> losses = losses(out);
        assertEquals(12, losses.size(), losses.toString());
        assertTrue(losses.get(12L) < losses.get(1L), "the loss did not fall: " + losses);
        assertEquals(12, Checkpoint.open(out.resolve("checkpoints/step-0000012")).step());
        JsonNode summary = JSON.readTree(out.resolve("summary.json").toFile());
        assertEquals("spark", summary.get("config").get("launch").get("launcher").asText());
    }

    /** Spark's workers need a Spark driver: plain {@code tessera train} says how to submit the job instead. */
    @Test
    void plainTrainRefusesTheSparkLauncher() throws Exception {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        Path out = tmp.resolve("refused");
        List<String> args = new ArrayList<>(List.of("train"));
        args.addAll(tinyJob(out, 2));
        int code = Main.run(new PrintStream(OutputStream.nullOutputStream()), new PrintStream(err, true,
                StandardCharsets.UTF_8), args.toArray(String[]::new));
        assertEquals(2, code);
        assertEquals("tessera: launch.launcher: spark runs the workers as Spark tasks, so the job must be submitted to"
                + " Spark: use deploy/spark/tessera-submit (or SparkLaunch.training(spark) from Java)\n",
                err.toString(StandardCharsets.UTF_8));
        assertFalse(Files.exists(out), "a refused job made its run directory");
    }

    static Map<Long, Double> losses(Path run) throws Exception {
        Map<Long, Double> out = new TreeMap<>();
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode n = JSON.readTree(line);
            if (n.has("loss")) {
                out.put(n.get("step").asLong(), n.get("loss").asDouble());
            }
        }
        return out;
    }
}
