package dev.tessera.comm;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Collectives between real worker JVMs on loopback, checked element for element inside each worker. */
class CommProcessTest {

    static final String JOB_PREFIX = "commtest" + ProcessHandle.current().pid();
    static final long DEADLINE_MS = 20_000;
    /** UDP ports of this test run, apart from other runs on the same machine. */
    static final int BASE_PORT = 42000 + (int) (ProcessHandle.current().pid() % 1000) * 16;
    static int jobCounter;

    private MediaDriverHost driver;
    private TestJvms launcher;

    record Job(String jobId, List<ChildJvm> workers) {
    }

    private Job start(String scenario, int ranks, Transport transport, int smallBytes, Map<Integer, String> tokens) {
        String jobId = JOB_PREFIX + "-" + (++jobCounter);
        String dir = MediaDriverHost.directoryFor(jobId, "host");
        driver = MediaDriverHost.launch(dir, CommConfig.MAX_MTU, 16 << 20);
        launcher = new TestJvms(List.of("-Xmx512m", "-XX:MaxDirectMemorySize=1g", "-XX:+UseSerialGC"));
        List<ChildJvm> workers = new ArrayList<>();
        for (int r = 0; r < ranks; r++) {
            workers.add(launcher.start(scenario + "-" + r, CommTestWorker.class.getName(),
                    List.of(scenario, Integer.toString(r), Integer.toString(ranks), dir, jobId, transport.name(),
                            Long.toString(DEADLINE_MS), Integer.toString(smallBytes),
                            Integer.toString(BASE_PORT + 4 * (jobCounter % 4))),
                    Map.of(CommConfig.TOKEN_ENV, tokens.getOrDefault(r, "secret-token-of-the-job"))));
        }
        return new Job(jobId, workers);
    }

    private static void assertAllOk(Job job, long timeoutMs) {
        for (ChildJvm w : job.workers()) {
            int code = w.waitFor(timeoutMs);
            String out = w.output();
            assertEquals(0, code, () -> w.name() + " exited " + code + ":\n" + out);
            assertTrue(out.contains("RESULT OK"), () -> w.name() + ":\n" + out);
            System.out.println("--- " + w.name() + "\n" + out.strip());
        }
    }

    @AfterEach
    void cleanUp() {
        if (launcher != null) {
            launcher.close();
            assertFalse(launcher.anyAlive(), "a worker process is still alive");
        }
        if (driver != null) {
            driver.close();
        }
        assertEquals(List.of(), leftoverDirectories(), "Aeron directories left in /dev/shm");
    }

    @AfterAll
    static void noLeaks() {
        assertEquals(0, ProcessHandle.current().children().filter(ProcessHandle::isAlive).count(),
                "child processes left running");
        assertEquals(List.of(), leftoverDirectories(), "Aeron directories left in /dev/shm");
    }

    static List<Path> leftoverDirectories() {
        Path base = Path.of(MediaDriverHost.directoryFor(JOB_PREFIX, "x")).getParent();
        try (Stream<Path> list = Files.list(base)) {
            return list.filter(p -> p.getFileName().toString().startsWith(MediaDriverHost.PREFIX + JOB_PREFIX))
                    .toList();
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void collectivesTwoRanks() {
        assertAllOk(start("collectives", 2, Transport.IPC, 64 << 10, Map.of()), 120_000);
    }

    @Test
    void collectivesThreeRanksRingForAllSizes() {
        assertAllOk(start("collectives", 3, Transport.IPC, 0, Map.of()), 120_000);
    }

    @Test
    void collectivesFourRanks() {
        assertAllOk(start("collectives", 4, Transport.AUTO, 64 << 10, Map.of()), 150_000);
    }

    @Test
    void collectivesOnSymmetricMemoryTwoRanks() {
        assertAllOk(start("collectives-symmetric", 2, Transport.IPC, 64 << 10, Map.of()), 120_000);
    }

    @Test
    void collectivesOnSymmetricMemoryThreeRanks() {
        assertAllOk(start("collectives-symmetric", 3, Transport.IPC, 64 << 10, Map.of()), 120_000);
    }

    @Test
    void collectivesOnSymmetricMemoryFourRanks() {
        assertAllOk(start("collectives-symmetric", 4, Transport.AUTO, 64 << 10, Map.of()), 150_000);
    }

    @Test
    void collectivesOnSymmetricMemoryOverUdpTakeTheAeronPaths() {
        assertAllOk(start("collectives-symmetric", 2, Transport.UDP, 64 << 10, Map.of()), 120_000);
    }

    @Test
    void allReduce256MegabytesOnSymmetricMemoryTwoRanks() {
        assertAllOk(start("big-symmetric", 2, Transport.IPC, 64 << 10, Map.of()), 120_000);
    }

    @Test
    void concurrentGroupsOnSymmetricMemoryFourRanks() {
        assertAllOk(start("groups-symmetric", 4, Transport.IPC, 64 << 10, Map.of()), 120_000);
    }

    @Test
    void collectivesTwoRanksOverUdp() {
        assertAllOk(start("collectives", 2, Transport.UDP, 64 << 10, Map.of()), 120_000);
    }

    @Test
    void allReduce256MegabytesTwoRanks() {
        assertAllOk(start("big", 2, Transport.IPC, 64 << 10, Map.of()), 120_000);
    }

    @Test
    void concurrentGroupsTwoRanks() {
        assertAllOk(start("groups", 2, Transport.IPC, 64 << 10, Map.of()), 120_000);
    }

    @Test
    void concurrentGroupsFourRanks() {
        assertAllOk(start("groups", 4, Transport.IPC, 64 << 10, Map.of()), 120_000);
    }

    @Test
    void killedPeerFailsOthersWithinDeadline() throws Exception {
        killedPeerFailsOthers("kill", 3); // more ranks than cores: the ring
    }

    @Test
    void killedPeerFailsOthersWithinDeadlineInAStagedAllReduce() throws Exception {
        killedPeerFailsOthers("kill", 2);
    }

    @Test
    void killedPeerFailsOthersWithinDeadlineOnSymmetricMemory() throws Exception {
        killedPeerFailsOthers("kill-symmetric", 3);
    }

    private void killedPeerFailsOthers(String scenario, int ranks) throws Exception {
        Job job = start(scenario, ranks, Transport.IPC, 64 << 10, Map.of());
        int dead = ranks - 1;
        ChildJvm victim = job.workers().get(dead);
        long waitUntil = System.currentTimeMillis() + 60_000;
        while (!victim.output().contains("ITER 2") && System.currentTimeMillis() < waitUntil) {
            assertTrue(victim.process().isAlive(), () -> "victim died early:\n" + victim.output());
            Thread.sleep(20);
        }
        assertTrue(victim.output().contains("ITER 2"), () -> "never got going:\n" + victim.output());
        victim.process().destroyForcibly(); // SIGKILL, mid-collective
        long killedAt = System.currentTimeMillis();
        for (int r = 0; r < dead; r++) {
            ChildJvm w = job.workers().get(r);
            int code = w.waitFor(DEADLINE_MS + 10_000);
            long took = System.currentTimeMillis() - killedAt;
            String out = w.output();
            assertEquals(3, code, () -> w.name() + " should fail with a CommException, exit " + code + ":\n" + out);
            assertTrue(took <= DEADLINE_MS + 10_000, "took " + took + " ms");
            String error = out.lines().filter(l -> l.startsWith("ERROR")).findFirst().orElse("");
            System.out.println(w.name() + " failed " + took + " ms after the kill: " + error);
            assertTrue(error.contains("all-reduce") && error.contains("group 'world'") && error.contains("rank " + dead),
                    () -> "error should name op, group and the dead rank " + dead + ": " + error);
        }
    }

    @Test
    void aMemberThatCannotCreateItsBlockMakesAllFallBackToAeron() {
        Job job = start("fallback-symmetric", 2, Transport.IPC, 64 << 10, Map.of());
        assertAllOk(job, 120_000);
        assertTrue(job.workers().get(1).output().contains("no symmetric memory for group 'world'"),
                () -> job.workers().get(1).output());
    }

    @Test
    void membersPassingBuffersAtDifferentPlacesOfSymmetricMemoryAreRefused() {
        Job job = start("mismatch-symmetric", 2, Transport.IPC, 64 << 10, Map.of());
        for (ChildJvm w : job.workers()) {
            int code = w.waitFor(DEADLINE_MS + 20_000);
            String out = w.output();
            assertEquals(3, code, () -> w.name() + " should refuse the all-reduce:\n" + out);
            String error = out.lines().filter(l -> l.startsWith("ERROR")).findFirst().orElse("");
            assertTrue(error.contains("every member must call the same collective on a buffer at the same place"),
                    error);
            System.out.println(w.name() + ": " + error);
        }
    }

    @Test
    void wrongJobTokenIsRejected() {
        Map<Integer, String> tokens = new HashMap<>();
        tokens.put(1, "not-the-token");
        Job job = start("connect", 2, Transport.IPC, 64 << 10, tokens);
        for (ChildJvm w : job.workers()) {
            int code = w.waitFor(DEADLINE_MS + 20_000);
            String out = w.output();
            assertEquals(3, code, () -> w.name() + " should be rejected:\n" + out);
            assertTrue(out.contains("wrong job token"), () -> w.name() + ":\n" + out);
            System.out.println(w.name() + ": " + out.lines().filter(l -> l.startsWith("ERROR")).findFirst().orElse(""));
        }
    }
}
