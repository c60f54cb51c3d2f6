package dev.tessera.coordinator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.coordinator.cli.Main;
import dev.tessera.worker.blas.BlasKernel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
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
                "wall_s", "params", "state_bytes", "blas", "config")) {
            assertTrue(summary.hasNonNull(field), "summary.json lacks " + field);
        }
        assertEquals(8, summary.get("steps").asLong());
        assertEquals(8 * 2 * 16, summary.get("tokens").asLong());
        assertEquals(losses.get(8L), summary.get("final_loss").asDouble(), 0.0);
        assertEquals(16, summary.get("config").get("model").get("d_model").asInt());
        assertEquals(BlasKernel.inUse().kernel(), summary.get("blas").get("kernel").asText());
        assertEquals(BlasKernel.inUse().chosenBy(), summary.get("blas").get("chosen_by").asText());
        assertTrue(Files.size(out.resolve("loss.png")) > 1000);
        assertTrue(Files.isRegularFile(out.resolve("checkpoints/step-0000004/manifest.json")));
        assertTrue(Files.isRegularFile(out.resolve("checkpoints/step-0000008/manifest.json")));
    }

    @Test
    void resumingContinuesBitIdenticallyToTheUninterruptedRun() throws IOException {
        trainThenResumeAtStep4(tmp.resolve("full"), tmp.resolve("resumed"));
        assertResumedBitIdentically(tmp.resolve("full"), tmp.resolve("resumed"), "adamw");
    }

    /** As above, for the factored optimizers: their per-tensor state must restore exactly too. */
    @ParameterizedTest
    @ValueSource(strings = {"adafactor", "came"})
    void resumingWithAFactoredOptimizerContinuesBitIdentically(String optimizer) throws IOException {
        Path full = tmp.resolve("full-" + optimizer);
        Path resumed = tmp.resolve("resumed-" + optimizer);
        trainThenResumeAtStep4(full, resumed, "--set", "optimizer.name=" + optimizer);
        assertEquals(optimizer, JSON.readTree(resumed.resolve("summary.json").toFile())
                .get("config").get("optimizer").get("name").asText());
        assertResumedBitIdentically(full, resumed, optimizer);
    }

    /**
     * GShard with a capacity that drops tokens, random routing and the z-loss, and HyperRouter with its hypernetwork
     * drawn from the seed: a resumed run routes and trains with the same bits (GShard's draws are keyed by seed,
     * step, layer and token).
     */
    @ParameterizedTest
    @ValueSource(strings = {"gshard", "hyper"})
    void resumingARoutedRunContinuesBitIdentically(String gate) throws IOException {
        Path full = tmp.resolve("full-" + gate);
        Path resumed = tmp.resolve("resumed-" + gate);
        trainThenResumeAtStep4(full, resumed, "--set", "model.gate=" + gate, "--set", "model.capacity_factor=0.5",
                "--set", "model.router_z_coef=0.01", "--set", "model.hyper_size=8");
        assertEquals(gate, JSON.readTree(resumed.resolve("summary.json").toFile())
                .get("config").get("model").get("gate").asText());
        assertResumedBitIdentically(full, resumed, gate);
        assertMoeMetrics(full, 8, gate.equals("gshard"));
    }

    /** Trains the tiny job for 8 steps into {@code full}, then resumes its step-4 checkpoint into {@code resumed}. */
    private void trainThenResumeAtStep4(Path full, Path resumed, String... sets) {
        List<String> train = new ArrayList<>(List.of(sets));
        train.addAll(List.of("--out", full.toString()));
        assertEquals(0, Main.run(args(TinyJob.trainArgs(train.toArray(String[]::new)))));
        assertEquals(0, Main.run("train", "--resume", full.resolve("checkpoints/step-0000004").toString(),
                "--out", resumed.toString()));
    }

    /** Steps 5-8 have the same losses, and step 8 the same weights and optimizer state, to the bit. */
    private static void assertResumedBitIdentically(Path full, Path resumed, String label) throws IOException {
        Map<Long, Double> expected = trainLosses(full);
        Map<Long, Double> actual = trainLosses(resumed);
        for (long step = 5; step <= 8; step++) {
            // Exact equality: same data, same arithmetic, same order.
            assertEquals(expected.get(step), actual.get(step), 0.0, label + ": loss at step " + step);
        }
        for (String file : List.of("model-00001-of-00001.safetensors", "optimizer/rank-00000.safetensors")) {
            String path = "checkpoints/step-0000008/" + file;
            assertArrayEquals(Files.readAllBytes(full.resolve(path)), Files.readAllBytes(resumed.resolve(path)),
                    label + ": " + file);
        }
    }

    /**
     * Every step line of {@code run}'s metrics.jsonl has its one MoE layer's routing: block 1, four loads summing to 1,
     * the aux loss of the step (the only MoE layer's), a positive z-loss, and drops if the gate {@code drops}.
     */
    static void assertMoeMetrics(Path run, int steps, boolean drops) throws IOException {
        int lines = 0;
        double dropped = 0;
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode node = JSON.readTree(line);
            if (!node.has("loss")) {
                continue;
            }
            lines++;
            JsonNode moe = node.get("moe");
            assertEquals(1, moe.size(), line);
            JsonNode layer = moe.get(0);
            assertEquals(1, layer.get("layer").asInt());
            double sum = 0;
            for (JsonNode load : layer.get("load")) {
                sum += load.asDouble();
            }
            assertEquals(4, layer.get("load").size());
            assertEquals(1.0, sum, 1e-9, line);
            assertEquals(node.get("aux_loss").asDouble(), layer.get("aux_loss").asDouble(), 0.0, line);
            assertTrue(layer.get("z_loss").asDouble() > 0, line);
            dropped += layer.get("dropped").asDouble();
        }
        assertEquals(steps, lines);
        assertEquals(drops, dropped > 0, "dropped " + dropped + " in " + steps + " steps");
    }

    /** Recomputing activations in backward changes no bit of the run: losses and final weights. */
    @Test
    void activationCheckpointingTrainsTheSameBits() throws IOException {
        Path kept = tmp.resolve("kept");
        assertEquals(0, Main.run(args(TinyJob.trainArgs("--out", kept.toString()))));
        Path recomputed = tmp.resolve("recomputed");
        assertEquals(0, Main.run(args(TinyJob.trainArgs("--set", "train.activation_checkpointing=blocks",
                "--out", recomputed.toString()))));

        assertEquals(trainLosses(kept), trainLosses(recomputed));
        String weights = "checkpoints/step-0000008/model-00001-of-00001.safetensors";
        assertArrayEquals(Files.readAllBytes(kept.resolve(weights)), Files.readAllBytes(recomputed.resolve(weights)));
    }

    @Test
    void summaryRecordsTheOptimizersStateBytes() throws IOException {
        Map<String, Long> bytes = new TreeMap<>();
        long params = 0;
        for (String optimizer : List.of("adamw", "adafactor", "came")) {
            Path out = tmp.resolve("bytes-" + optimizer);
            assertEquals(0, Main.run(args(TinyJob.trainArgs("--set", "optimizer.name=" + optimizer,
                    "--set", "train.steps=2", "--set", "optimizer.warmup_steps=1", "--set", "eval.every=0",
                    "--set", "checkpoint.every=0", "--out", out.toString()))));
            JsonNode summary = JSON.readTree(out.resolve("summary.json").toFile());
            bytes.put(optimizer, summary.get("state_bytes").asLong());
            params = summary.get("params").asLong();
        }
        assertEquals(2 * 4 * params, bytes.get("adamw"), "AdamW: m and v in fp32");
        assertTrue(bytes.get("adafactor") < bytes.get("came"), bytes.toString());
        assertTrue(bytes.get("came") < bytes.get("adamw"), bytes.toString());
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
