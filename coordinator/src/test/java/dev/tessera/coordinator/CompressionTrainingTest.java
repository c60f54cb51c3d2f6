package dev.tessera.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.coordinator.cli.Main;
import dev.tessera.worker.checkpoint.CheckpointLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Gradient compression on worker processes over real Aeron: the run trains (its loss falls), every rank's error
 * feedback is checkpointed, and a run resumed from the middle continues with the same losses bit for bit. A
 * lossless setting (Top-K keeping everything) under ZeRO-2 on four workers follows the single-process run, which
 * checks the plumbing (buckets, decode-and-sum, ZeRO's shards and parameter gather) apart from the codec.
 */
@Timeout(600)
@ExtendWith(QuickStartChildJvms.class)
class CompressionTrainingTest {

    @TempDir
    Path tmp;

    /**
     * Each codec at a setting that trains this small model in 20 steps; layers of 512 elements and up compressed.
     * "topk-lgreco" starts from a uniform density inside L-GreCo's grid (5%) and re-chooses each layer's after
     * steps 5, 10, 15 and 20, so the checkpoint of step 10 holds a choice solved but not yet in force.
     * "powersgd-lgreco" does the same with each matrix's rank around the uniform rank 4, so the resume at step 10
     * restores ranks other than the uniform one before it loads the warm-start Qs, and adds up error norms
     * ({@code lgreco_error: norm}, as the bench does), not squares.
     */
    private static List<String> job(Path out, String variant) {
        String method = variant.replace("-lgreco", "");
        return ClusterTrainingTest.job(out, 2, 20, "--set", "compression.method=" + method, "--set",
                "compression.topk_density=" + (variant.equals("topk-lgreco") ? 0.05 : 0.1), "--set",
                "compression.fedzip_keep=0.1", "--set",
                "compression.lgreco=" + variant.endsWith("-lgreco"), "--set", "compression.lgreco_warmup_steps=5",
                "--set", "compression.lgreco_period=5", "--set", "compression.min_elements=512", "--set",
                "compression.lgreco_error=" + (method.equals("powersgd") ? "norm" : "squared"), "--set",
                "checkpoint.every=10");
    }

    @Test
    void losslessTopKUnderZeroTwoOnFourWorkersFollowsTheSingleProcessRun() throws Exception {
        Path single = tmp.resolve("single");
        assertEquals(0, Main.run(ClusterTrainingTest.job(single, 1, 20).toArray(String[]::new)));
        Path run = tmp.resolve("w4-zero2-topk1");
        ClusterTrainingTest.Run result = ClusterTrainingTest.run(ClusterTrainingTest.job(run, 4, 20, "--set",
                "compression.method=topk", "--set", "compression.topk_density=1", "--set",
                "compression.min_elements=0", "--set", "zero.stage=2"));
        assertEquals(0, result.code(), result.err());
        ClusterTrainingTest.assertNothingLeft(result.jobIds());
        ClusterTrainingTest.assertLossesClose(single, run);
    }

    private static long wireBytes(Path run, long step) throws Exception {
        return row(run, step).get("wire_bytes").asLong();
    }

    private static JsonNode row(Path run, long step) throws Exception {
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode row = new ObjectMapper().readTree(line);
            if (row.has("loss") && row.get("step").asLong() == step) {
                return row;
            }
        }
        throw new AssertionError("no step " + step + " in " + run);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"topk", "qsgd", "powersgd", "fedzip", "topk-lgreco", "powersgd-lgreco"})
    void eachCodecTrainsAndResumesBitIdentically(String method) throws Exception {
        Path full = tmp.resolve(method);
        ClusterTrainingTest.Run run = ClusterTrainingTest.run(job(full, method));
        assertEquals(0, run.code(), run.err());
        ClusterTrainingTest.assertNothingLeft(run.jobIds());
        Map<Long, Double> losses = ClusterTrainingTest.losses(full);
        double first = (losses.get(1L) + losses.get(2L) + losses.get(3L) + losses.get(4L) + losses.get(5L)) / 5;
        double last = (losses.get(16L) + losses.get(17L) + losses.get(18L) + losses.get(19L) + losses.get(20L)) / 5;
        assertTrue(last < first - 0.2, "the loss falls (mean of steps 1-5 " + first + ", of 16-20 " + last + "): "
                + losses);

        for (String line : Files.readAllLines(full.resolve("metrics.jsonl"))) {
            JsonNode row = new ObjectMapper().readTree(line);
            if (row.has("loss")) {
                assertTrue(row.get("wire_bytes").asLong() > 0, "rank 0 sent its encoded gradients: " + line);
            }
        }
        if (method.equals("topk-lgreco")) { // the same total error in fewer bytes, from the first choice on
            long uniform = wireBytes(full, 3);
            long chosen = wireBytes(full, 8);
            assertTrue(chosen < uniform, "L-GreCo's choice sends " + chosen + " bytes a step, uniform Top-K " + uniform);
            JsonNode choice = row(full, 6).get("lgreco"); // the first choice comes into force in step 6
            assertTrue(choice != null && choice.size() > 0 && choice.elements().next().asDouble() > 0,
                    "metrics.jsonl names the chosen density of each compressed layer at step 6: " + choice);
            assertTrue(row(full, 7).get("lgreco") == null, "only the step a choice comes into force carries it");
        }
        if (method.equals("powersgd-lgreco")) { // the same total error in fewer bytes than uniform rank 4
            long uniform = wireBytes(full, 3);
            long chosen = wireBytes(full, 8);
            assertTrue(chosen < uniform, "L-GreCo's ranks send " + chosen + " bytes a step, uniform rank 4 "
                    + uniform);
            JsonNode choice = row(full, 6).get("lgreco");
            assertTrue(choice != null && choice.size() > 0, "metrics.jsonl names each matrix's rank at step 6: "
                    + choice);
            choice.elements().forEachRemaining(rank -> assertTrue(List.of(1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
                    .contains(rank.asDouble()), "a rank of the grid: " + choice));
        }
        Path step10 = full.resolve("checkpoints/step-0000010");
        for (int rank = 0; rank < 2; rank++) {
            assertTrue(Files.isRegularFile(step10.resolve(CheckpointLayout.compressionState(rank))),
                    "rank " + rank + "'s compression state is in the checkpoint");
        }
        Path resumedDir = tmp.resolve(method + "-resumed");
        ClusterTrainingTest.Run resumed = ClusterTrainingTest.run(List.of("train", "--resume", step10.toString(),
                "--out", resumedDir.toString()));
        assertEquals(0, resumed.code(), resumed.err());
        ClusterTrainingTest.assertNothingLeft(resumed.jobIds());
        Map<Long, Double> after = ClusterTrainingTest.losses(resumedDir);
        for (long step = 11; step <= 20; step++) {
            assertEquals(losses.get(step), after.get(step), 0.0, "step " + step + " after resuming at step 10");
        }
    }
}
