package dev.tessera.worker.cluster;

import com.hazelcast.config.Config;
import com.hazelcast.config.NetworkConfig;
import com.hazelcast.core.Hazelcast;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
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
        ClusterSettings settings = ClusterSettings.loopback("rdv", "secret", 5811, 3, 300);
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
        ClusterNode a = start(ClusterSettings.loopback("tok", "right", 5821, 2, 300), MemberInfo.COORDINATOR, -1);
        ClusterNode b = start(ClusterSettings.loopback("tok", "wrong", 5821, 2, 300), MemberInfo.WORKER, 0);
        assertEquals(1, a.memberCount());
        assertEquals(1, b.memberCount());
    }

    @Test
    void aClosedMemberIsReportedByRank() throws Exception {
        ClusterSettings settings = ClusterSettings.loopback("leave", "t", 5831, 2, 300);
        ClusterNode coordinator = start(settings, MemberInfo.COORDINATOR, -1);
        BlockingQueue<MemberInfo> lost = new LinkedBlockingQueue<>();
        coordinator.onMemberLost(lost::add);
        ClusterNode worker = ClusterNode.join(settings, MemberInfo.WORKER, 0);
        worker.publishEndpoint(0, "aeron:ipc?rank=0");
        coordinator.awaitEndpoints(1, Duration.ofSeconds(20));
        worker.close();
        MemberInfo gone = lost.poll(20, TimeUnit.SECONDS);
        assertNotNull(gone, "no member-lost event");
        assertEquals(0, gone.rank());
        assertEquals(MemberInfo.WORKER, gone.role());
    }

    /**
     * Issue 12: anyone who learns the cluster name can join. A real foreign member joins, writes garbage, a
     * forged entry and a replayed one (a real proof under another rank), then leaves: none of its entries is
     * accepted, its leaving is not reported, and the job's own member still is.
     */
    @Test
    void aForeignMemberWithTheClusterNameIsIgnored() throws Exception {
        ClusterSettings settings = ClusterSettings.loopback("foreign", "t", 5861, 3, 300);
        ClusterNode coordinator = start(settings, MemberInfo.COORDINATOR, -1);
        BlockingQueue<MemberInfo> lost = new LinkedBlockingQueue<>();
        coordinator.onMemberLost(lost::add);
        ClusterNode worker = start(settings, MemberInfo.WORKER, 0);
        worker.publishEndpoint(0, "aeron:ipc?rank=0");
        assertEquals("aeron:ipc?rank=0", coordinator.awaitEndpoints(1, Duration.ofSeconds(20)).get(0));

        HazelcastInstance foreign = Hazelcast.newHazelcastInstance(foreignConfig(settings));
        try {
            assertEquals(3, coordinator.memberCount(), "the foreign member joined with the cluster name");
            IMap<Integer, String> map = foreign.getMap("tessera.endpoints");
            String real = map.get(0);
            String uuid = foreign.getCluster().getLocalMember().getUuid().toString();
            map.put(1, real); // a genuine proof, replayed under another rank
            map.put(2, "worker " + uuid + " " + "00".repeat(32) + " evil 127.0.0.1 1"); // a forged proof
            map.put(0, "garbage");
            long before = coordinator.rejectedEntries();
            assertThrows(TimeoutException.class, () -> coordinator.awaitEndpoints(3, Duration.ofMillis(300)));
            assertTrue(coordinator.rejectedEntries() >= before + 3, "rejected " + coordinator.rejectedEntries());
            worker.publishEndpoint(0, "aeron:ipc?rank=0"); // the owner republishes (Rendezvous does every second)
            assertEquals("aeron:ipc?rank=0", coordinator.awaitEndpoints(1, Duration.ofSeconds(20)).get(0));
        } finally {
            foreign.shutdown();
        }
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (coordinator.memberCount() != 2) {
            assertTrue(System.nanoTime() < until, "the foreign member never left");
            Thread.sleep(20);
        }
        // Membership events arrive in order: had the foreign member's leaving been reported, it would come first.
        nodes.remove(worker);
        worker.close();
        MemberInfo gone = lost.poll(60, TimeUnit.SECONDS);
        assertNotNull(gone, "no member-lost event for the job's worker");
        assertEquals(0, gone.rank());
        assertEquals(MemberInfo.WORKER, gone.role());
    }

    /** A plain Hazelcast member that knows the cluster name and nothing else. */
    private static Config foreignConfig(ClusterSettings settings) {
        Config config = new Config();
        config.setClusterName(settings.clusterName());
        config.setProperty("hazelcast.logging.type", "none");
        config.setProperty("hazelcast.phone.home.enabled", "false");
        config.setProperty("hazelcast.wait.seconds.before.join", "0");
        NetworkConfig network = config.getNetworkConfig();
        network.setPort(settings.port()).setPortAutoIncrement(true).setPortCount(settings.portCount());
        network.getInterfaces().setEnabled(true).addInterface("127.0.0.1");
        network.getJoin().getMulticastConfig().setEnabled(false);
        network.getJoin().getAutoDetectionConfig().setEnabled(false);
        network.getJoin().getTcpIpConfig().setEnabled(true).setMembers(settings.seeds());
        return config;
    }

    /**
     * Issue 12: something else listening on a seed port must not hang the join for Hazelcast's 300 s; the
     * failure names the ports and the key to change.
     */
    @Test
    void aJoinThatCannotCompleteFailsAtItsDeadlineNamingThePorts() throws Exception {
        ClusterSettings settings = ClusterSettings.loopback("hang", "t", 5871, 2, 300).withJoinSeconds(8);
        try (ServerSocket squatter = new ServerSocket()) {
            squatter.bind(new InetSocketAddress("127.0.0.1", 5871));
            ClusterJoinException e = assertThrows(ClusterJoinException.class,
                    () -> ClusterNode.join(settings, MemberInfo.COORDINATOR, -1).close());
            assertTrue(e.getMessage().contains("within 8 s on ports 5871..5872")
                    && e.getMessage().contains("launch.hazelcast_port"), e.getMessage());
        }
    }

    @Test
    void aKilledWorkerJvmIsDetectedWithinTenSeconds() throws Exception {
        ClusterSettings settings = ClusterSettings.loopback("kill", "t", 5841, 2, 300);
        long seconds = assertDetected(settings, "-KILL");
        assertTrue(seconds <= 10, "-KILL detected after " + seconds + " s, bound 10 s");
    }

    /**
     * A frozen member is Hazelcast's to call dead only after the job's silence limit: a starved one looks the
     * same from here. (The job catches a stopped process sooner, from its state on the host.)
     */
    @Test
    void aFrozenWorkerJvmIsCalledDeadNoSoonerThanTheSilenceLimit() throws Exception {
        ClusterSettings settings = ClusterSettings.loopback("freeze", "t", 5851, 2, 6);
        long seconds = assertDetected(settings, "-STOP");
        // Hazelcast counts from the last heartbeat it received, up to one 1 s interval before the signal.
        assertTrue(seconds >= 6 - 1, "-STOP called dead after " + seconds + " s, before the 6 s limit");
    }

    /** Seconds from the signal to the member-lost event. */
    private long assertDetected(ClusterSettings settings, String signal) throws Exception {
        String job = settings.jobId();
        int port = settings.port();
        ClusterNode coordinator = start(settings, MemberInfo.COORDINATOR, -1);
        coordinator.publishEndpoint(0, "aeron:ipc?rank=0");
        BlockingQueue<MemberInfo> lost = new LinkedBlockingQueue<>();
        coordinator.onMemberLost(lost::add);
        Process worker = new ProcessBuilder(ClusterMemberMain.command(job, "t", port, 2, 1,
                settings.deadAfterSeconds()))
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
        MemberInfo gone = lost.poll(60, TimeUnit.SECONDS);
        long seconds = Math.round((System.nanoTime() - start) / 1e9);
        assertNotNull(gone, "no member-lost event");
        assertEquals(1, gone.rank());
        assertEquals(worker.pid(), gone.pid());
        return seconds;
    }

    private ClusterNode start(ClusterSettings settings, String role, int rank) {
        ClusterNode node = ClusterNode.join(settings, role, rank);
        nodes.add(node);
        return node;
    }
}
