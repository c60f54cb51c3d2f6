package dev.tessera.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.coordinator.cli.Main;
import dev.tessera.worker.checkpoint.CheckpointLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * CO2 (ALGORITHMS.md §6, issue 19) on two worker processes over real Aeron, on the embedded corpus: local steps
 * with no gradient all-reduce, the parameters averaged once per round of {@code tau = 3} steps by a non-blocking
 * all-reduce applied one round late. The run trains (its loss falls clearly), and it sends about a third of the
 * bytes per step of the synchronous run of the same job: one all-reduce of the parameters per round instead of
 * one of the gradients per step (§6 oracle 3). Both run over UDP: within one host over IPC the large all-reduces
 * go through shared memory, which moves no frames and counts no wire bytes.
 */
@Timeout(600)
@ExtendWith(QuickStartChildJvms.class)
class Co2TrainingTest {

    private static final int STEPS = 30;
    private static final String[] KEEP = {"--set", "co2.keep_local_progress=true"};

    @TempDir
    Path tmp;

    @Test
    void twoWorkersTrainWithCo2AndSendAnAllReducePerRound() throws Exception {
        Path co2 = tmp.resolve("co2");
        ClusterTrainingTest.Run run = ClusterTrainingTest.run(ClusterTrainingTest.job(co2, 2, STEPS, "--set",
                "co2.enabled=true", "--set", "co2.tau=3", "--set", "launch.transport=udp"));
        assertEquals(0, run.code(), run.err());
        ClusterTrainingTest.assertNothingLeft(run.jobIds());
        Map<Long, Double> losses = ClusterTrainingTest.losses(co2);
        assertEquals(STEPS, losses.size(), "every step reports its loss: " + losses);
        double first = mean(losses, 1, 5);
        double last = mean(losses, STEPS - 4, STEPS);
        assertTrue(last < first - 0.3, "the loss falls (mean of steps 1-5 " + first + ", of the last five " + last
                + "): " + losses);
        String config = Files.readString(co2.resolve("config.yaml"));
        assertTrue(config.contains("co2:") && config.contains("enabled: true"), "config.yaml records co2: " + config);

        Path sync = tmp.resolve("sync");
        ClusterTrainingTest.Run syncRun = ClusterTrainingTest.run(ClusterTrainingTest.job(sync, 2, STEPS, "--set",
                "launch.transport=udp"));
        assertEquals(0, syncRun.code(), syncRun.err());
        ClusterTrainingTest.assertNothingLeft(syncRun.jobIds());
        long co2Bytes = wireBytes(co2);
        long syncBytes = wireBytes(sync);
        double ratio = (double) co2Bytes / syncBytes;
        System.out.printf("co2: loss %.4f (steps 1-5) -> %.4f (last five); %d wire bytes in %d steps against the"
                + " synchronous run's %d (ratio %.3f)%n", first, last, co2Bytes, STEPS, syncBytes, ratio);
        // tau = 3: one parameter all-reduce per three steps where the synchronous run all-reduces the gradients
        // (as many bytes) every step; the per-step loss and routing sums are a few bytes on top of either.
        assertTrue(ratio > 0.30 && ratio < 0.37, "co2 sent " + co2Bytes + " bytes in " + STEPS + " steps, the"
                + " synchronous run " + syncBytes + ": ratio " + ratio + ", expected about 1/3");
    }

    /**
     * Checkpoints every 10 steps with tau = 3 fall mid-round (rounds end at 3, 6, 9, 12, ...), while the average of
     * the round before is pending and each rank holds its own local parameters: a run resumed from step 10
     * continues with the same losses bit for bit. (The restart test below does the same with rounds that keep the
     * rank's own progress, whose carried progress is rank state too.)
     */
    @Test
    void aCo2RunResumesMidRoundBitIdentically() throws Exception {
        Path full = tmp.resolve("full");
        ClusterTrainingTest.Run run = ClusterTrainingTest.run(co2Job(full));
        assertEquals(0, run.code(), run.err());
        ClusterTrainingTest.assertNothingLeft(run.jobIds());
        Path step10 = full.resolve("checkpoints/step-0000010");
        for (int rank = 0; rank < 2; rank++) {
            assertTrue(Files.isRegularFile(step10.resolve(CheckpointLayout.co2State(rank))),
                    "rank " + rank + "'s CO2 state is in the checkpoint");
            assertTrue(Files.isRegularFile(step10.resolve(CheckpointLayout.optimizerShard(rank))),
                    "rank " + rank + "'s own inner optimizer state is in the checkpoint");
        }
        Path resumed = tmp.resolve("resumed");
        ClusterTrainingTest.Run again = ClusterTrainingTest.run(List.of("train", "--resume", step10.toString(),
                "--out", resumed.toString()));
        assertEquals(0, again.code(), again.err());
        ClusterTrainingTest.assertNothingLeft(again.jobIds());
        assertSameLosses(ClusterTrainingTest.losses(full), ClusterTrainingTest.losses(resumed), 11,
                "resumed from step 10");
    }

    /**
     * The outer deltas through Top-K with error feedback (every matrix of the tiny model compressed): the run
     * trains, sends well under half the bytes of the same uncompressed CO2 run, and resumes from a mid-round
     * checkpoint bit for bit, which needs the pending mean delta and each rank's error-feedback residual.
     */
    @Test
    void compressedOuterDeltasTrainSendLessAndResumeMidRoundBitIdentically() throws Exception {
        String[] topk = {"--set", "compression.method=topk", "--set", "compression.topk_density=0.1", "--set",
                "compression.min_elements=512", "--set", "launch.transport=udp"};
        Path compressed = tmp.resolve("compressed");
        ClusterTrainingTest.Run run = ClusterTrainingTest.run(co2Job(compressed, topk));
        assertEquals(0, run.code(), run.err());
        ClusterTrainingTest.assertNothingLeft(run.jobIds());
        Map<Long, Double> losses = ClusterTrainingTest.losses(compressed);
        double first = mean(losses, 1, 5);
        double last = mean(losses, STEPS - 4, STEPS);
        assertTrue(last < first - 0.3, "the loss falls (mean of steps 1-5 " + first + ", of the last five " + last
                + "): " + losses);
        Path step10 = compressed.resolve("checkpoints/step-0000010");
        for (int rank = 0; rank < 2; rank++) {
            assertTrue(Files.isRegularFile(step10.resolve(CheckpointLayout.compressionState(rank))),
                    "rank " + rank + "'s error-feedback residual is in the checkpoint");
        }

        Path plain = tmp.resolve("plain");
        ClusterTrainingTest.Run plainRun = ClusterTrainingTest.run(co2Job(plain, "--set", "launch.transport=udp"));
        assertEquals(0, plainRun.code(), plainRun.err());
        ClusterTrainingTest.assertNothingLeft(plainRun.jobIds());
        double ratio = (double) wireBytes(compressed) / wireBytes(plain);
        System.out.printf("co2 with top-k 0.1: %.4f -> %.4f, %.3f of the uncompressed run's wire bytes%n", first,
                last, ratio);
        // 10% of each matrix as (index, value) pairs gathered, the vectors whole: about a fifth of the bytes.
        assertTrue(ratio < 0.45, "compressed co2 sent " + ratio + " of the uncompressed run's bytes");

        Path resumed = tmp.resolve("resumed");
        ClusterTrainingTest.Run again = ClusterTrainingTest.run(List.of("train", "--resume", step10.toString(),
                "--out", resumed.toString()));
        assertEquals(0, again.code(), again.err());
        ClusterTrainingTest.assertNothingLeft(again.jobIds());
        assertSameLosses(losses, ClusterTrainingTest.losses(resumed), 11, "compressed, resumed from step 10");
    }

    /**
     * A worker killed after the step-10 checkpoint (mid-round: the round ends at step 12) is detected, the restart
     * policy relaunches the job from that checkpoint, and every step's loss equals an uninterrupted run's bit for
     * bit. Rounds keep the rank's own progress here ({@code co2.keep_local_progress}), so the carried progress is
     * restored too.
     */
    @Test
    void aWorkerKilledMidRoundRestartsTheJobFromItsLastCheckpoint() throws Exception {
        Path reference = tmp.resolve("reference");
        ClusterTrainingTest.Run run = ClusterTrainingTest.run(co2Job(reference, KEEP));
        assertEquals(0, run.code(), run.err());
        ClusterTrainingTest.assertNothingLeft(run.jobIds());

        Path restarted = tmp.resolve("restarted");
        ClusterTrainingTest.Run result = ClusterTrainingTest.runKillingRankOneAfterCheckpoint(
                co2Job(restarted, KEEP[0], KEEP[1], "--set", "restart.max_restarts=1"), restarted, 10);
        assertEquals(0, result.code(), result.err());
        assertEquals(2, result.jobIds().size(), "the killed attempt and the restarted one: " + result.jobIds());
        ClusterTrainingTest.assertNothingLeft(result.jobIds());
        Map<Long, Double> afterRestart = ClusterTrainingTest.losses(restarted);
        assertEquals(STEPS, afterRestart.size(), "every step once in metrics.jsonl: " + afterRestart.keySet());
        assertSameLosses(ClusterTrainingTest.losses(reference), afterRestart, 1, "restarted after a killed worker");
    }

    /**
     * One replica whose rounds keep their own progress, with outer momentum 0 and outer_lr 1: each outer step
     * gives back exactly what the local steps made ({@code x_{t+1} + (y_t - x_t) = y_t} in real numbers), so the run
     * follows plain training with its inner optimizer, within float32 rounding (ClusterTrainingTest's 1e-5).
     */
    @Test
    void oneReplicaKeepingItsProgressFollowsPlainTraining() throws Exception {
        Path plain = tmp.resolve("plain");
        assertEquals(0, Main.run(ClusterTrainingTest.job(plain, 1, 20).toArray(String[]::new)));
        Path co2 = tmp.resolve("co2-one-replica");
        assertEquals(0, Main.run(ClusterTrainingTest.job(co2, 1, 20, "--set", "co2.enabled=true", "--set",
                "co2.tau=3", "--set", "co2.outer_momentum=0", "--set", "co2.keep_local_progress=true")
                .toArray(String[]::new)));
        ClusterTrainingTest.assertLossesClose(plain, co2);
    }

    /**
     * {@code co2.shard_outer_state} over the two ranks: each keeps the outer state of half the parameters, the
     * average is a reduce-scatter to the owners and the outer parameters are all-gathered. With two ranks the
     * average's sum is the all-reduce's ({@code a + b} either way round) and the outer step is elementwise, so the
     * losses equal the unsharded run's bit for bit. Each rank's CO2 file holds half the outer state and pending
     * average (the files are the memory that the ranks' outer state takes, plus the whole local parameters); a
     * resume from step 10 (mid-round, an average pending) continues bit for bit, sharded and, assembling each
     * rank's whole outer state from both files, unsharded.
     */
    @Test
    void aShardedOuterStateTrainsAsTheUnshardedOneAndResumesBitIdentically() throws Exception {
        Path sharded = tmp.resolve("sharded");
        ClusterTrainingTest.Run run = ClusterTrainingTest.run(co2Job(sharded, "--set", "co2.shard_outer_state=true"));
        assertEquals(0, run.code(), run.err());
        ClusterTrainingTest.assertNothingLeft(run.jobIds());
        Map<Long, Double> losses = ClusterTrainingTest.losses(sharded);
        assertEquals(STEPS, losses.size(), "every step reports its loss: " + losses);
        double first = mean(losses, 1, 5);
        double last = mean(losses, STEPS - 4, STEPS);
        assertTrue(last < first - 0.3, "the loss falls (mean of steps 1-5 " + first + ", of the last five " + last
                + "): " + losses);

        Path plain = tmp.resolve("plain");
        ClusterTrainingTest.Run plainRun = ClusterTrainingTest.run(co2Job(plain));
        assertEquals(0, plainRun.code(), plainRun.err());
        ClusterTrainingTest.assertNothingLeft(plainRun.jobIds());
        assertSameLosses(ClusterTrainingTest.losses(plain), losses, 1, "sharded against unsharded");

        Path step10 = sharded.resolve("checkpoints/step-0000010");
        for (int rank = 0; rank < 2; rank++) {
            long shardedBytes = Files.size(step10.resolve(CheckpointLayout.co2State(rank)));
            long wholeBytes = Files.size(plain.resolve("checkpoints/step-0000010").resolve(
                    CheckpointLayout.co2State(rank)));
            System.out.printf("co2 rank %d's state file at step 10: %d bytes sharded, %d unsharded%n", rank,
                    shardedBytes, wholeBytes);
            // live (all) + x_prev, x, m and the pending average (half each): 3 Psi of 5 Psi.
            double ratio = (double) shardedBytes / wholeBytes;
            assertTrue(ratio > 0.55 && ratio < 0.65, "rank " + rank + "'s CO2 file holds half the outer state: "
                    + shardedBytes + " bytes against " + wholeBytes + " unsharded");
        }
        Path resumed = tmp.resolve("resumed");
        ClusterTrainingTest.Run again = ClusterTrainingTest.run(List.of("train", "--resume", step10.toString(),
                "--out", resumed.toString()));
        assertEquals(0, again.code(), again.err());
        ClusterTrainingTest.assertNothingLeft(again.jobIds());
        assertSameLosses(losses, ClusterTrainingTest.losses(resumed), 11, "sharded, resumed from step 10");

        Path unsharded = tmp.resolve("resumed-unsharded");
        ClusterTrainingTest.Run other = ClusterTrainingTest.run(List.of("train", "--resume", step10.toString(),
                "--out", unsharded.toString(), "--set", "co2.shard_outer_state=false"));
        assertEquals(0, other.code(), other.err());
        ClusterTrainingTest.assertNothingLeft(other.jobIds());
        assertSameLosses(losses, ClusterTrainingTest.losses(unsharded), 11,
                "resumed unsharded from the sharded step-10 checkpoint");
    }

    private static List<String> co2Job(Path out, String... extra) {
        List<String> args = new ArrayList<>(ClusterTrainingTest.job(out, 2, STEPS, "--set", "co2.enabled=true",
                "--set", "co2.tau=3", "--set", "checkpoint.every=10"));
        args.addAll(List.of(extra));
        return args;
    }

    private static void assertSameLosses(Map<Long, Double> expected, Map<Long, Double> actual, long from,
                                         String what) {
        for (long step = from; step <= STEPS; step++) {
            assertEquals(expected.get(step), actual.get(step), 0.0, what + ", step " + step);
        }
    }

    private static double mean(Map<Long, Double> losses, long from, long to) {
        double sum = 0;
        for (long s = from; s <= to; s++) {
            sum += losses.get(s);
        }
        return sum / (to - from + 1);
    }

    private static long wireBytes(Path run) throws Exception {
        long total = 0;
        int rows = 0;
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode row = new ObjectMapper().readTree(line);
            if (row.has("loss")) {
                total += row.get("wire_bytes").asLong();
                rows++;
            }
        }
        assertEquals(STEPS, rows, "a metrics row per step in " + run);
        return total;
    }
}
