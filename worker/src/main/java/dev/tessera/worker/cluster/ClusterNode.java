package dev.tessera.worker.cluster;

import com.hazelcast.cluster.Member;
import com.hazelcast.cluster.MembershipEvent;
import com.hazelcast.cluster.MembershipListener;
import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import com.hazelcast.config.NetworkConfig;
import com.hazelcast.core.Hazelcast;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * This process's embedded Hazelcast member. Members carry their role and rank as attributes, so a lost member
 * is reported by rank; every process publishes its data-plane endpoint under its rank for the others to find.
 * <p>
 * Membership is scoped to the job: anyone who learns the cluster name can join, so an entry counts only with a
 * valid {@link EndpointProof}, and a member that leaves matters only if it proved itself a rank of the job.
 */
public final class ClusterNode implements AutoCloseable {

    private static final String ENDPOINTS = "tessera.endpoints";
    private static final long READ_WAIT_MS = 200;

    private final HazelcastInstance hazelcast;
    private final MemberInfo self;
    private final String selfUuid;
    private final EndpointProof proof;
    /** Member UUID -> the rank it proved, for every member whose endpoint entry verified. */
    private final Map<String, Integer> provenRanks = new ConcurrentHashMap<>();
    private final AtomicLong rejectedEntries = new AtomicLong();
    private final AtomicLong failedPublishes = new AtomicLong();

    private ClusterNode(HazelcastInstance hazelcast, MemberInfo self, EndpointProof proof) {
        this.hazelcast = hazelcast;
        this.self = self;
        this.selfUuid = hazelcast.getCluster().getLocalMember().getUuid().toString();
        this.proof = proof;
    }

    /**
     * Starts a member and joins the job's cluster within {@code settings.joinSeconds()}.
     *
     * @throws ClusterJoinException naming the ports when the join does not complete in time
     */
    public static ClusterNode join(ClusterSettings settings, String role, int rank) {
        Config config = new Config();
        config.setClusterName(settings.clusterName());
        config.setInstanceName(settings.clusterName() + "-" + role + (rank >= 0 ? "-" + rank : ""));
        // The deadline detector, not phi-accrual: its bound is exactly what the user set (fault.dead_after_s);
        // phi-accrual given the same acceptable pause would only add a history-dependent delay on top.
        config.setProperty("hazelcast.heartbeat.failuredetector.type", "deadline");
        config.setProperty("hazelcast.heartbeat.interval.seconds", "1");
        config.setProperty("hazelcast.max.no.heartbeat.seconds", Integer.toString(settings.deadAfterSeconds()));
        // Calls to a starved member must not time out before the member itself is declared dead.
        config.setProperty("hazelcast.operation.call.timeout.millis",
                Long.toString(settings.deadAfterSeconds() * 1000L));
        config.setProperty("hazelcast.max.join.seconds", Integer.toString(settings.joinSeconds()));
        // A job's members are all known up front: do not wait 5 s for more to show up before forming the cluster.
        config.setProperty("hazelcast.wait.seconds.before.join", "0");
        config.setProperty("hazelcast.phone.home.enabled", "false");
        config.setProperty("hazelcast.shutdownhook.enabled", "false");
        config.setProperty("hazelcast.logging.type", "none");
        config.setProperty("hazelcast.socket.bind.any", "false");
        config.getMemberAttributeConfig().setAttribute("role", role);
        config.getMemberAttributeConfig().setAttribute("rank", Integer.toString(rank));
        config.getMemberAttributeConfig().setAttribute("pid", Long.toString(ProcessHandle.current().pid()));
        NetworkConfig network = config.getNetworkConfig();
        network.setPort(settings.port()).setPortAutoIncrement(true).setPortCount(settings.portCount());
        network.getInterfaces().setEnabled(true).addInterface(settings.bindHost());
        JoinConfig join = network.getJoin();
        join.getMulticastConfig().setEnabled(false);
        join.getAutoDetectionConfig().setEnabled(false);
        // A loaded machine can take seconds to accept a connection; giving up early splits the cluster.
        join.getTcpIpConfig().setEnabled(true).setMembers(settings.seeds()).setConnectionTimeoutSeconds(30);
        HazelcastInstance hz;
        try {
            hz = Hazelcast.newHazelcastInstance(config);
        } catch (IllegalStateException e) { // Hazelcast's "Node failed to start!" once max.join.seconds pass
            throw new ClusterJoinException("could not join the job's Hazelcast cluster within "
                    + settings.joinSeconds() + " s on ports " + settings.portRange() + " of " + settings.bindHost()
                    + " (" + e.getMessage() + "); another program may be listening there: choose a free range"
                    + " with launch.hazelcast_port (first port " + settings.port() + ")");
        }
        return new ClusterNode(hz, describe(hz.getCluster().getLocalMember()),
                new EndpointProof(settings.jobId(), settings.token()));
    }

    public MemberInfo self() {
        return self;
    }

    public int memberCount() {
        return hazelcast.getCluster().getMembers().size();
    }

    /**
     * Calls {@code onLost} from Hazelcast's event thread for every member that leaves or is declared dead after it
     * proved itself a rank of this job (see {@link #awaitEndpoints}); other members come and go unremarked.
     */
    public void onMemberLost(Consumer<MemberInfo> onLost) {
        hazelcast.getCluster().addMembershipListener(new MembershipListener() {
            @Override
            public void memberAdded(MembershipEvent event) {
            }

            @Override
            public void memberRemoved(MembershipEvent event) {
                if (provenRanks.containsKey(event.getMember().getUuid().toString())) {
                    onLost.accept(describe(event.getMember()));
                }
            }
        });
    }

    /**
     * Publishes this rank's data-plane endpoint for {@link #awaitEndpoints}, with this member's UUID and the
     * proof that a holder of the job token wrote it. The entry holds no secret.
     */
    public void publishEndpoint(int rank, String endpoint) {
        String role = self.role();
        // Not waited for: a starved or stopped partition owner must not block the caller (it republishes anyway).
        endpoints().putAsync(rank, role + " " + selfUuid + " " + proof.sign(rank, role, selfUuid, endpoint) + " "
                + endpoint).whenComplete((previous, failure) -> {
                    if (failure != null && failedPublishes.getAndIncrement() == 0) {
                        System.err.println("rendezvous: publishing rank " + rank + "'s endpoint failed (retried every"
                                + " second): " + failure);
                    }
                });
    }

    /** Entries seen that did not verify (forged, garbage, or another job's); each was ignored. */
    public long rejectedEntries() {
        return rejectedEntries.get();
    }

    /**
     * Waits until ranks {@code 0..world-1} have all published an endpoint that verifies. An entry that does not
     * verify is counted and ignored: its rank is missing until the owner publishes again.
     *
     * @throws TimeoutException naming the ranks that did not publish within {@code deadline}
     */
    public Map<Integer, String> awaitEndpoints(int world, Duration deadline) throws TimeoutException, InterruptedException {
        long end = System.nanoTime() + deadline.toNanos();
        IMap<Integer, String> map = endpoints();
        while (true) {
            Map<Integer, String> found = new TreeMap<>();
            StringBuilder missing = new StringBuilder();
            List<Integer> unanswered = new ArrayList<>();
            for (int r = 0; r < world; r++) {
                String endpoint = verified(r, read(map, r, unanswered));
                if (endpoint == null) {
                    missing.append(missing.length() == 0 ? "" : ", ").append(r);
                } else {
                    found.put(r, endpoint);
                }
            }
            if (missing.length() == 0) {
                return found;
            }
            if (System.nanoTime() > end) {
                throw new TimeoutException("rendezvous: ranks " + missing + " did not publish an endpoint within "
                        + deadline.toSeconds() + " s (" + memberCount() + " members in cluster "
                        + hazelcast.getConfig().getClusterName() + "; last reads unanswered for ranks " + unanswered
                        + ", " + rejectedEntries.get() + " entries rejected, " + failedPublishes.get()
                        + " of this member's publishes failed)");
            }
            Thread.sleep(20);
        }
    }

    @Override
    public void close() {
        hazelcast.shutdown();
    }

    /**
     * The entry of {@code rank}, or null when it is not there or its partition owner does not answer within
     * {@link #READ_WAIT_MS}: the caller's own deadline and liveness checks must keep running meanwhile.
     */
    private static String read(IMap<Integer, String> map, int rank, List<Integer> unanswered)
            throws InterruptedException {
        try {
            return map.getAsync(rank).toCompletableFuture().get(READ_WAIT_MS, TimeUnit.MILLISECONDS);
        } catch (TimeoutException | ExecutionException slow) {
            unanswered.add(rank);
            return null;
        }
    }

    /** The endpoint of {@code entry} if its proof holds for {@code rank}; remembers the member as proven. */
    private String verified(int rank, String entry) {
        if (entry == null) {
            return null;
        }
        String[] parts = entry.split(" ", 4);
        if (parts.length == 4 && proof.verify(rank, parts[0], parts[1], parts[3], parts[2])) {
            provenRanks.put(parts[1], rank);
            return parts[3];
        }
        rejectedEntries.incrementAndGet();
        return null;
    }

    private IMap<Integer, String> endpoints() {
        return hazelcast.getMap(ENDPOINTS);
    }

    private static MemberInfo describe(Member member) {
        String rank = member.getAttribute("rank");
        String pid = member.getAttribute("pid");
        return new MemberInfo(member.getAttribute("role"), rank == null ? -1 : Integer.parseInt(rank),
                member.getAddress().getHost(), pid == null ? -1 : Integer.parseInt(pid),
                member.getAddress().toString());
    }
}
