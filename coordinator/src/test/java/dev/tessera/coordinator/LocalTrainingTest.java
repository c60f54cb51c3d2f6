package dev.tessera.coordinator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.coordinator.cli.Main;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The real training path through the CLI: outputs of a run, and bit-identical continuation after resume. */
class LocalTrainingTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @Test
    void aRunWritesMetricsSummaryPlotAndCheckpoints() throws IOException {
        Path out = tmp.resolve("run");
        assertEquals(0, Main.run(args(TinyJob.trainArgs("--out", out.toString()))));

        Map<Long, Double> losses = trainLosses(out);
        assertEquals(8, losses.size());
        JsonNode summary = JSON.readTree(out.resolve("summary.json").toFile());
        for (String field : List.of("steps", "tokens", "final_loss", "eval_loss", "entropy_floor", "tokens_per_s",
                "wall_s", "params", "config")) {
            assertTrue(summary.hasNonNull(field), "summary.json lacks " + field);
        }
        assertEquals(8, summary.get("steps").asLong());
        assertEquals(8 * 2 * 16, summary.get("tokens").asLong());
        assertEquals(losses.get(8L), summary.get("final_loss").asDouble(), 0.0);
        assertEquals(16, summary.get("config").get("model").get("d_model").asInt());
        assertTrue(Files.size(out.resolve("loss.png")) > 1000);
        assertTrue(Files.isRegularFile(out.resolve("checkpoints/step-0000004/manifest.json")));
        assertTrue(Files.isRegularFile(out.resolve("checkpoints/step-0000008/manifest.json")));
    }

    @Test
    void resumingContinuesBitIdenticallyToTheUninterruptedRun() throws IOException {
        Path full = tmp.resolve("full");
        assertEquals(0, Main.run(args(TinyJob.trainArgs("--out", full.toString()))));
        Path resumed = tmp.resolve("resumed");
        assertEquals(0, Main.run("train", "--resume", full.resolve("checkpoints/step-0000004").toString(),
                "--out", resumed.toString()));

        Map<Long, Double> expected = trainLosses(full);
        Map<Long, Double> actual = trainLosses(resumed);
        for (long step = 5; step <= 8; step++) {
            // Exact equality: same data, same arithmetic, same order.
            assertEquals(expected.get(step), actual.get(step), 0.0, "loss at step " + step);
        }
        String weights = "checkpoints/step-0000008/model-00001-of-00001.safetensors";
        assertArrayEquals(Files.readAllBytes(full.resolve(weights)), Files.readAllBytes(resumed.resolve(weights)));
        String optimizer = "checkpoints/step-0000008/optimizer/rank-00000.safetensors";
        assertArrayEquals(Files.readAllBytes(full.resolve(optimizer)), Files.readAllBytes(resumed.resolve(optimizer)));
    }

    static String[] args(List<String> list) {
        return list.toArray(String[]::new);
    }

    static Map<Long, Double> trainLosses(Path run) throws IOException {
        Map<Long, Double> losses = new TreeMap<>();
        List<String> lines = new ArrayList<>(Files.readAllLines(run.resolve("metrics.jsonl")));
        for (String line : lines) {
            JsonNode node = JSON.readTree(line);
            if (node.has("loss")) {
                losses.put(node.get("step").asLong(), node.get("loss").asDouble());
            }
        }
        return losses;
    }
}
