package dev.tessera.worker.cluster;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Real Hazelcast members on loopback: in this JVM, and in child JVMs that are killed or frozen. */
@Timeout(120)
class ClusterNodeTest {

    private final List<AutoCloseable> nodes = new ArrayList<>();
    private final List<Process> children = new ArrayList<>();

    @AfterEach
    void cleanUp() throws Exception {
        for (Process p : children) {
            p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
        for (AutoCloseable n : nodes) {
            n.close();
        }
    }

    @Test
    void membersJoinAndFindEachOthersEndpoints() throws Exception {
        ClusterSettings settings = ClusterSettings.loopback("rdv", "secret", 5811, 3);
        ClusterNode coordinator = start(settings, MemberInfo.COORDINATOR, -1);
        ClusterNode w0 = start(settings, MemberInfo.WORKER, 0);
        ClusterNode w1 = start(settings, MemberInfo.WORKER, 1);
        assertEquals(3, coordinator.memberCount());
        w0.publishEndpoint(0, "aeron:ipc?r=0");
        w1.publishEndpoint(1, "aeron:udp?endpoint=127.0.0.1:40124");
        Map<Integer, String> endpoints = coordinator.awaitEndpoints(2, Duration.ofSeconds(10));
        assertEquals(Map.of(0, "aeron:ipc?r=0", 1, "aeron:udp?endpoint=127.0.0.1:40124"), endpoints);
        TimeoutException e = assertThrows(TimeoutException.class,
                () -> coordinator.awaitEndpoints(4, Duration.ofMillis(200)));
        assertTrue(e.getMessage().startsWith("rendezvous: ranks 2, 3 did not publish an endpoint within 0 s"),
                e.getMessage());
    }

    @Test
    void aDifferentTokenCannotJoin() throws Exception {
        ClusterNode a = start(ClusterSettings.loopback("tok", "right", 5821, 2), MemberInfo.COORDINATOR, -1);
        ClusterNode b = start(ClusterSettings.loopback("tok", "wrong", 5821, 2), MemberInfo.WORKER, 0);
        assertEquals(1, a.memberCount());
        assertEquals(1, b.memberCount());
    }

    @Test
    void aClosedMemberIsReportedByRank() throws Exception {
        ClusterSettings settings = ClusterSettings.loopback("leave", "t", 5831, 2);
        ClusterNode coordinator = start(settings, MemberInfo.COORDINATOR, -1);
        BlockingQueue<MemberInfo> lost = new LinkedBlockingQueue<>();
        coordinator.onMemberLost(lost::add);
        ClusterNode.join(settings, MemberInfo.WORKER, 7).close();
        MemberInfo gone = lost.poll(20, TimeUnit.SECONDS);
        assertNotNull(gone, "no member-lost event");
        assertEquals(7, gone.rank());
        assertEquals(MemberInfo.WORKER, gone.role());
    }

    @Test
    void aKilledWorkerJvmIsDetectedWithinTenSeconds() throws Exception {
        assertDetected("kill", "-KILL", 5841, Duration.ofSeconds(10));
    }

    @Test
    void aFrozenWorkerJvmIsDetectedWithinFifteenSeconds() throws Exception {
        assertDetected("freeze", "-STOP", 5851, Duration.ofSeconds(15));
    }

    private void assertDetected(String job, String signal, int port, Duration bound) throws Exception {
        ClusterSettings settings = ClusterSettings.loopback(job, "t", port, 2);
        ClusterNode coordinator = start(settings, MemberInfo.COORDINATOR, -1);
        coordinator.publishEndpoint(0, "aeron:ipc?rank=0");
        BlockingQueue<MemberInfo> lost = new LinkedBlockingQueue<>();
        coordinator.onMemberLost(lost::add);
        Process worker = new ProcessBuilder(ClusterMemberMain.command(job, "t", port, 2, 1))
                .redirectErrorStream(true).start();
        children.add(worker);
        BufferedReader out = new BufferedReader(new InputStreamReader(worker.getInputStream(), StandardCharsets.UTF_8));
        StringBuilder printed = new StringBuilder();
        String line;
        while ((line = out.readLine()) != null && !line.startsWith("joined")) {
            printed.append(line).append('\n');
        }
        assertTrue(line != null, "worker exited before joining:\n" + printed);
        assertEquals("aeron:ipc?rank=1", coordinator.awaitEndpoints(2, Duration.ofSeconds(5)).get(1));
        long start = System.nanoTime();
        assertEquals(0, new ProcessBuilder("kill", signal, Long.toString(worker.pid())).start().waitFor());
        MemberInfo gone = lost.poll(bound.toSeconds() + 30, TimeUnit.SECONDS);
        double seconds = (System.nanoTime() - start) / 1e9;
        assertNotNull(gone, "no member-lost event");
        assertEquals(1, gone.rank());
        assertEquals(worker.pid(), gone.pid());
        assertTrue(seconds <= bound.toSeconds(), signal + " detected after " + seconds + " s, bound " + bound);
    }

    private ClusterNode start(ClusterSettings settings, String role, int rank) {
        ClusterNode node = ClusterNode.join(settings, role, rank);
        nodes.add(node);
        return node;
    }
}
