package dev.tessera.coordinator;

import static dev.tessera.coordinator.ClusterTrainingTest.assertLossesClose;
import static dev.tessera.coordinator.ClusterTrainingTest.assertNothingLeft;
import static dev.tessera.coordinator.ClusterTrainingTest.job;
import static dev.tessera.coordinator.ClusterTrainingTest.load;
import static dev.tessera.coordinator.ClusterTrainingTest.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.coordinator.cli.Main;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Expert parallelism on real worker JVMs against the single-process run (DESIGN.md's equivalence rule): each rank
 * holds n_experts / ep experts and the tokens reach them by all-to-all, dropless and in the fixed capacity layout;
 * the checkpoint is one consolidated model, and a run resumes onto another ep; with ZeRO the experts' state is
 * sharded over the ranks that hold the same experts.
 */
@Timeout(600)
@ExtendWith(QuickStartChildJvms.class)
class ExpertParallelTrainingTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    /** {@link ClusterTrainingTest#job} with {@code mesh.ep}. */
    private static List<String> epJob(Path out, int dp, int ep, String... extra) {
        List<String> args = new ArrayList<>(job(out, dp, 20, extra));
        args.addAll(List.of("--set", "mesh.ep=" + ep));
        return args;
    }

    @Test
    void droplessExpertParallelRunsFollowTheSingleProcessRun() throws Exception {
        Path single = tmp.resolve("ep1");
        assertEquals(0, Main.run(job(single, 1, 20).toArray(String[]::new)));
        for (int ep : new int[] {2, 4}) {
            Path run = tmp.resolve("dp" + ep + "-ep" + ep);
            ClusterTrainingTest.Run result = run(epJob(run, ep, ep));
            assertEquals(0, result.code(), result.err());
            assertNothingLeft(result.jobIds());
            assertLossesClose(single, run);
            assertSameWeights(single, run, "ep=" + ep);
            JsonNode summary = JSON.readTree(run.resolve("summary.json").toFile());
            JsonNode alone = JSON.readTree(single.resolve("summary.json").toFile());
            assertTrue(summary.get("memory").get("param_bytes").asLong()
                    < alone.get("memory").get("param_bytes").asLong(), "ep=" + ep + " holds fewer parameter bytes");
            assertAllToAllMeasured(run);
        }
        // The hierarchical exchange with nodes of 2 ranks (two hops: within a pair, then across pairs) delivers the
        // same bytes as the flat one, so the run is the same bit for bit.
        Path twoHop = tmp.resolve("dp4-ep4-hierarchical");
        ClusterTrainingTest.Run result = run(epJob(twoHop, 4, 4, "--set", "moe.all_to_all=hierarchical", "--set",
                "moe.ranks_per_node=2"));
        assertEquals(0, result.code(), result.err());
        assertNothingLeft(result.jobIds());
        assertSameBits(tmp.resolve("dp4-ep4"), twoHop, "hierarchical against flat");
    }

    /**
     * Switch routing at a capacity below the tokens per rank (so the fixed layout is used) that drops nothing, at
     * ep=4 and ep=2, and ep=2 again with its exchanges overlapped.
     */
    @Test
    void capacityLayoutDroppingNothingFollowsTheSingleProcessRun() throws Exception {
        // 128 tokens per rank at ep=4: with 64, one rank once sent every token to one expert, which no capacity
        // below the tokens holds
        String[] capacity = {"--set", "model.gate=switch", "--set", "model.top_k=1", "--set",
                "model.capacity_factor=3.9", "--set", "train.batch_size=16"};
        Path single = tmp.resolve("switch-ep1");
        assertEquals(0, Main.run(job(single, 1, 20, capacity).toArray(String[]::new)));
        for (int ep : new int[] {4, 2}) {
            Path run = tmp.resolve("switch-ep" + ep);
            ClusterTrainingTest.Run result = run(epJob(run, ep, ep, capacity));
            assertEquals(0, result.code(), result.err());
            assertNothingLeft(result.jobIds());
            for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
                JsonNode n = JSON.readTree(line);
                if (n.has("moe")) {
                    assertEquals(0.0, n.get("moe").get(0).get("dropped").asDouble(), 0.0, line);
                }
            }
            assertLossesClose(single, run);
            assertSameWeights(single, run, "capacity layout, ep=" + ep);
        }
        Path run = tmp.resolve("switch-ep2");
        // Overlapped, in a chunk per held expert: each expert still runs once on all its rows, so the same bits.
        Path overlapped = tmp.resolve("switch-ep2-overlap");
        List<String> args = epJob(overlapped, 2, 2, capacity);
        args.addAll(List.of("--set", "moe.overlap=true"));
        ClusterTrainingTest.Run again = run(args);
        assertEquals(0, again.code(), again.err());
        assertNothingLeft(again.jobIds());
        assertSameBits(run, overlapped, "overlapped against whole exchanges");
        assertAllToAllMeasured(overlapped);
    }

    @Test
    void anExpertParallelCheckpointResumesOntoOtherExpertParallelDegrees() throws Exception {
        Path single = tmp.resolve("alone");
        assertEquals(0, Main.run(job(single, 1, 20).toArray(String[]::new)));
        Path run = tmp.resolve("ep2");
        ClusterTrainingTest.Run result = run(epJob(run, 2, 2, "--set", "checkpoint.every=10"));
        assertEquals(0, result.code(), result.err());
        for (int ep : new int[] {1, 4}) {
            Path resumed = tmp.resolve("resumed-ep" + ep);
            ClusterTrainingTest.Run again = run(List.of("train", "--resume",
                    run.resolve("checkpoints/step-0000010").toString(), "--out", resumed.toString(), "--set",
                    "mesh.dp=" + ep, "--set", "mesh.ep=" + ep));
            assertEquals(0, again.code(), again.err());
            assertLossesClose(ClusterTrainingTest.losses(single), resumed, 11, 20);
            assertSameWeights(single, resumed, "resumed onto ep=" + ep);
        }
    }

    /**
     * ZeRO with ep=2 on 4 ranks: the dense state is sharded over all 4, each expert's over the 2 ranks that hold it
     * (AdamW's flat moments at stage 2; CAME's factored statistics at stage 3, where each unit is gathered as its
     * dense range over the 4 ranks and its experts' range over the 2, and the checkpoint is written unit by unit by
     * the experts' holders, with the exchanges overlapped). Both follow the single-process run; rank 0 keeps under
     * half the optimizer state of a single process; and the ZeRO-2 checkpoint resumes onto ep=1 at ZeRO-1 and onto
     * ep=4 at ZeRO-3.
     */
    @Test
    void zeroShardsExpertStateOverTheExpertDataParallelGroup() throws Exception {
        Path single = tmp.resolve("adamw-alone");
        assertEquals(0, Main.run(job(single, 1, 20).toArray(String[]::new)));
        Path run = tmp.resolve("zero2-dp4-ep2");
        ClusterTrainingTest.Run result = run(epJob(run, 4, 2, "--set", "zero.stage=2", "--set", "checkpoint.every=10"));
        assertEquals(0, result.code(), result.err());
        assertNothingLeft(result.jobIds());
        assertLossesClose(single, run);
        assertSameWeights(single, run, "ZeRO-2, ep=2");
        long alone = JSON.readTree(single.resolve("summary.json").toFile()).get("memory").get("state_bytes").asLong();
        long sharded = JSON.readTree(run.resolve("summary.json").toFile()).get("memory").get("state_bytes").asLong();
        assertTrue(2 * sharded < alone, "rank 0 keeps " + sharded + " state bytes of a single process's " + alone);
        String[][] targets = {{"mesh.dp=2", "mesh.ep=1", "zero.stage=1"}, {"mesh.dp=4", "mesh.ep=4", "zero.stage=3"}};
        for (int i = 0; i < targets.length; i++) {
            Path resumed = tmp.resolve("resumed-" + i);
            List<String> args = new ArrayList<>(List.of("train", "--resume",
                    run.resolve("checkpoints/step-0000010").toString(), "--out", resumed.toString()));
            for (String set : targets[i]) {
                args.addAll(List.of("--set", set));
            }
            ClusterTrainingTest.Run again = run(args);
            assertEquals(0, again.code(), again.err());
            assertLossesClose(ClusterTrainingTest.losses(single), resumed, 11, 20);
            assertSameWeights(single, resumed, "resumed onto " + String.join(", ", targets[i]));
        }

        String[] came = {"--set", "optimizer.name=came"};
        Path cameAlone = tmp.resolve("came-alone");
        assertEquals(0, Main.run(job(cameAlone, 1, 20, came).toArray(String[]::new)));
        Path cameRun = tmp.resolve("came-zero3-dp4-ep2");
        List<String> args = epJob(cameRun, 4, 2, came);
        args.addAll(List.of("--set", "zero.stage=3", "--set", "moe.overlap=true")); // overlap composes with ZeRO-3
        ClusterTrainingTest.Run cameResult = run(args);
        assertEquals(0, cameResult.code(), cameResult.err());
        assertLossesClose(cameAlone, cameRun);
        assertSameWeights(cameAlone, cameRun, "CAME, ZeRO-3, ep=2");
    }

    /** The same loss at every step and the same final weights, bit for bit. */
    private static void assertSameBits(Path expected, Path actual, String what) throws Exception {
        assertEquals(ClusterTrainingTest.losses(expected), ClusterTrainingTest.losses(actual), what + ": losses");
        assertArrayEquals(load(expected.resolve("checkpoints/step-0000020")).toDoubleVector(),
                load(actual.resolve("checkpoints/step-0000020")).toDoubleVector(), 0.0, what + ": weights");
    }

    private static void assertSameWeights(Path single, Path run, String what) {
        INDArray expected = load(single.resolve("checkpoints/step-0000020"));
        INDArray actual = load(run.resolve("checkpoints/step-0000020"));
        double relative = ClusterTrainingTest.relativeDifference(actual, expected);
        assertTrue(relative <= ClusterTrainingTest.TOLERANCE, what + ": final weights differ by " + relative);
    }

    private static void assertAllToAllMeasured(Path run) throws Exception {
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode n = JSON.readTree(line);
            if (n.has("moe")) {
                assertTrue(n.get("moe").get(0).get("all_to_all_bytes").asLong() > 0, line);
            }
        }
    }
}
