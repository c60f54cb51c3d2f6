package dev.tessera.coordinator.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.worker.checkpoint.Checkpoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * deploy/spark/tessera-submit to a real standalone Master and Worker on loopback, two executors of one core each:
 * one barrier task, and so one worker, on each. The cluster is shared by the tests and ended after them, also on
 * failure.
 */
@Timeout(420)
class SparkStandaloneTest {

    /** Two executors of one core: the barrier stage's two tasks land on different executors. */
    private static final List<String> TWO_EXECUTORS = List.of("--conf", "spark.executor.cores=1", "--conf",
            "spark.cores.max=2", "--conf", "spark.executor.memory=512m");

    @TempDir
    static Path tmp;
    private static StandaloneCluster cluster;

    @BeforeAll
    static void startCluster() throws Exception {
        cluster = StandaloneCluster.start(Files.createDirectories(tmp.resolve("cluster")));
    }

    @AfterAll
    static void stopCluster() throws Exception {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void sparkSubmitToAStandaloneClusterTrainsOnTwoExecutors() throws Exception {
        Path out = tmp.resolve("run");
        String log = submit(out, SparkLocalTest.tinyJob(out, 8, "--set", "checkpoint.every=8"), null);
        Map<Long, Double> losses = SparkLocalTest.losses(out);
        assertEquals(8, losses.size(), log);
        assertTrue(losses.get(8L) < losses.get(1L), "the loss did not fall: " + losses);
        assertEquals(8, Checkpoint.open(out.resolve("checkpoints/step-0000008")).step());
    }

    /**
     * An executor killed (SIGKILL) after the first checkpoint: the attempt fails naming the rank, the next attempt is
     * a new barrier stage on the executor the Worker starts in its place, and it resumes from that checkpoint.
     */
    @Test
    void aKilledExecutorFailsTheStageAndTheJobResumesFromItsCheckpoint() throws Exception {
        Path out = tmp.resolve("killed");
        String log = submit(out, SparkLocalTest.tinyJob(out, 16, "--set", "checkpoint.every=4", "--set",
                "restart.max_restarts=1"), out.resolve("checkpoints/step-0000004"));
        assertTrue(Pattern.compile("job failed: worker rank [01] .*(exited|left the cluster)").matcher(log).find(),
                log);
        assertTrue(log.contains("restart 1 of 1"), log);
        assertTrue(Pattern.compile("resuming from \\S+step-00000(04|08|12) at step (4|8|12)").matcher(log).find(), log);
        assertEquals(16, Checkpoint.open(out.resolve("checkpoints/step-0000016")).step());
        assertTrue(SparkLocalTest.losses(out).containsKey(16L), log);
    }

    /**
     * Submits the job and waits for it; with {@code killAfter}, kills one executor once that checkpoint exists.
     * Returns the driver's output.
     */
    private static String submit(Path out, List<String> trainArgs, Path killAfter) throws Exception {
        Path work = Files.createDirectories(tmp.resolve(out.getFileName() + "-submit"));
        Path log = work.resolve("submit.log");
        Process submit = SparkProcesses.submit(work, cluster.masterUrl, TWO_EXECUTORS, trainArgs, log);
        try {
            if (killAfter != null) {
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(240);
                while (!Files.isDirectory(killAfter)) {
                    assertTrue(System.nanoTime() < until && submit.isAlive(), "the job never wrote " + killAfter
                            + ":\n" + Files.readString(log));
                    Thread.sleep(20);
                }
                List<ProcessHandle> executors = cluster.executors();
                assertEquals(2, executors.size(), "executors: " + executors);
                assertTrue(executors.get(1).destroyForcibly());
            }
            assertTrue(submit.waitFor(300, TimeUnit.SECONDS), "spark-submit did not end within 300 s:\n"
                    + Files.readString(log));
            assertEquals(0, submit.exitValue(), Files.readString(log));
            System.out.println(Files.readString(log)); // the driver's timeline, in the test's report
            SparkProcesses.assertNothingLeft(out);
            return Files.readString(log);
        } finally {
            SparkProcesses.stop(submit);
            assertFalse(submit.isAlive());
        }
    }
}
