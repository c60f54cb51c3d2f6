package dev.tessera.coordinator;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.comm.ChildJvm;
import dev.tessera.coordinator.cli.Main;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Checkpoints written by a cluster: resume on the same and on other meshes, and restart after a crash. */
@Timeout(300)
@ExtendWith(QuickStartChildJvms.class)
class ClusterRecoveryTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @Test
    void aClusterCheckpointResumesIdenticallyOnTheSameMeshAndCloselyOnOthers() throws Exception {
        Path full = tmp.resolve("full");
        ClusterTrainingTest.Run first = ClusterTrainingTest.run(ClusterTrainingTest.job(full, 2, 20, "--set",
                "checkpoint.every=10"));
        assertEquals(0, first.code(), first.err());
        Path step10 = full.resolve("checkpoints/step-0000010");
        Map<Long, Double> expected = ClusterTrainingTest.losses(full);

        Path same = tmp.resolve("same-mesh");
        ClusterTrainingTest.Run resumed = ClusterTrainingTest.run(List.of("train", "--resume",
                step10.toString(), "--out", same.toString()));
        assertEquals(0, resumed.code(), resumed.err());
        Map<Long, Double> sameLosses = ClusterTrainingTest.losses(same);
        for (long step = 11; step <= 20; step++) {
            assertEquals(expected.get(step), sameLosses.get(step), 0.0, "dp=2 -> dp=2, step " + step);
        }

        Path single = tmp.resolve("one-process");
        assertEquals(0, Main.run("train", "--resume", step10.toString(), "--out", single.toString(), "--set",
                "mesh.dp=1"));
        Path four = tmp.resolve("four-workers");
        ClusterTrainingTest.Run wider = ClusterTrainingTest.run(List.of("train", "--resume",
                step10.toString(), "--out", four.toString(), "--set", "mesh.dp=4"));
        assertEquals(0, wider.code(), wider.err());
        for (Path other : new Path[] {single, four}) {
            ClusterTrainingTest.assertLossesClose(expected, other, 11, 20);
        }
        for (ClusterTrainingTest.Run r : List.of(first, resumed, wider)) {
            ClusterTrainingTest.assertNothingLeft(r.jobIds());
        }
    }

    @Test
    void aJobWithARestartPolicySurvivesAKilledWorkerAndFinishesItsSteps() throws Exception {
        Path reference = tmp.resolve("reference");
        assertEquals(0, Main.run(ClusterTrainingTest.job(reference, 1, 30).toArray(String[]::new)));

        Path run = tmp.resolve("restarted");
        ClusterTrainingTest.Run result = ClusterTrainingTest.runKillingRankOneAfterCheckpoint(ClusterTrainingTest.job(
                run, 2, 30, "--set", "checkpoint.every=5", "--set", "restart.max_restarts=1"), run, 10);
        assertEquals(0, result.code(), result.err());
        Map<Long, Double> losses = ClusterTrainingTest.losses(run);
        assertEquals(30, losses.size(), "every step once in metrics.jsonl: " + losses.keySet());
        ClusterTrainingTest.assertLossesClose(ClusterTrainingTest.losses(reference), run, 1, 30);
        assertTrue(Files.isDirectory(run.resolve("checkpoints/step-0000030")));
        assertSummaryCountsTheJob(run, 30, 1);
        assertEquals(2, result.jobIds().size(), "one job id per attempt: " + result.jobIds());
        ClusterTrainingTest.assertNothingLeft(result.jobIds());
    }

    /** Before its first checkpoint, a restart begins again at step 1: the rows of the failed attempt go. */
    @Test
    void aRestartFromTheStartKeepsOneMetricsRowPerStepAndTheSummaryCountsTheJob() throws Exception {
        Path run = tmp.resolve("restarted-from-start");
        int steps = 40;
        CompletableFuture<ClusterTrainingTest.Run> job = CompletableFuture.supplyAsync(() -> ClusterTrainingTest.run(
                ClusterTrainingTest.job(run, 2, steps, "--set", "restart.max_restarts=1")));
        List<String> jobIds = new ArrayList<>();
        try {
            Path metrics = run.resolve("metrics.jsonl");
            long until = System.nanoTime() + 120_000_000_000L;
            while (!(Files.exists(metrics) && Files.readAllLines(metrics).size() >= 5)) {
                assertTrue(System.nanoTime() < until && !job.isDone(), "the job never got to step 5");
                Thread.sleep(20);
            }
            assertFalse(Files.isDirectory(run.resolve("checkpoints")), "no checkpoint yet: the restart is from the start");
            String jobId = ClusterTrainingTest.jobIdOf(run);
            ProcessHandle victim = ClusterTrainingTest.workers().filter(p -> ClusterTrainingTest.commandLine(p)
                    .contains("--job-id " + jobId + " --rank 1 --")).findFirst().orElseThrow();
            assertEquals(0, new ProcessBuilder("kill", "-KILL", Long.toString(victim.pid())).start().waitFor());
            ClusterTrainingTest.Run result = job.get();
            assertEquals(0, result.code(), result.err());
            jobIds.addAll(result.jobIds());
        } finally {
            if (!job.isDone()) {
                List<String> ids = ClusterTrainingTest.jobIds(run);
                ClusterTrainingTest.workers().filter(p -> ids.stream().anyMatch(id -> ClusterTrainingTest
                        .commandLine(p).contains("--job-id " + id + " "))).forEach(ProcessHandle::destroyForcibly);
                job.get();
            }
        }
        Map<Long, Integer> rows = new TreeMap<>();
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode node = JSON.readTree(line);
            if (node.has("loss")) {
                rows.merge(node.get("step").asLong(), 1, Integer::sum);
            }
        }
        assertEquals(steps, rows.size(), rows.toString());
        rows.forEach((step, count) -> assertEquals(1, count, "metrics.jsonl rows of step " + step));
        assertSummaryCountsTheJob(run, steps, 1);
        assertEquals(2, jobIds.size(), "one job id per attempt: " + jobIds);
        ClusterTrainingTest.assertNothingLeft(jobIds);
    }

    private static void assertSummaryCountsTheJob(Path run, long steps, int restarts) throws Exception {
        JsonNode summary = JSON.readTree(run.resolve("summary.json").toFile());
        assertEquals(steps, summary.get("steps").asLong(), "steps of the whole job");
        assertEquals(steps * 8 * 32, summary.get("tokens").asLong(), "tokens of the whole job (batch 8 x seq 32)");
        assertEquals(restarts, summary.get("restarts").asInt());
    }

    /** Ctrl-C on the coordinator process: it stops its workers and removes its Aeron directory. */
    @Test
    void interruptingTheCoordinatorLeavesNothingBehind() throws Exception {
        Path run = tmp.resolve("interrupted");
        // As a terminal's Ctrl-C finds it: a shell without job control (a CI script's `cmd &`) starts its children
        // with SIGINT ignored, and a JVM that inherits that never sees the signal. env execs the JVM in its place.
        List<String> command = new ArrayList<>(List.of("env", "--default-signal=INT"));
        command.addAll(ChildJvm.command(List.of(), Main.class.getName(), ClusterTrainingTest.job(run, 2, 100000)));
        Process coordinator = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(tmp.resolve("coordinator.log").toFile()).start();
        try {
            Path metrics = run.resolve("metrics.jsonl");
            long until = System.nanoTime() + 120_000_000_000L;
            while (!(Files.exists(metrics) && Files.readAllLines(metrics).size() >= 3)) {
                assertTrue(System.nanoTime() < until && coordinator.isAlive(), "the job never got to step 3: "
                        + Files.readString(tmp.resolve("coordinator.log")));
                Thread.sleep(50);
            }
            List<ProcessHandle> workers = coordinator.descendants().filter(ProcessHandle::isAlive).toList();
            assertEquals(2, workers.size(), "two worker processes");
            assertEquals(0, new ProcessBuilder("kill", "-INT", Long.toString(coordinator.pid())).start().waitFor());
            if (!coordinator.waitFor(30, TimeUnit.SECONDS)) {
                // What it was doing: its threads (the JVM answers SIGQUIT even while shutting down) and its log.
                new ProcessBuilder("kill", "-QUIT", Long.toString(coordinator.pid())).start().waitFor();
                Thread.sleep(2_000);
                String log = Files.readString(tmp.resolve("coordinator.log"));
                fail("the coordinator did not stop on SIGINT within 30 s; its log and threads:\n"
                        + log.substring(Math.max(0, log.length() - 20_000)));
            }
            for (ProcessHandle w : workers) {
                w.onExit().get(15, TimeUnit.SECONDS);
            }
        } finally {
            coordinator.descendants().forEach(ProcessHandle::destroyForcibly);
            coordinator.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
        ClusterTrainingTest.assertNothingLeft(ClusterTrainingTest.jobIds(run));
    }
}
