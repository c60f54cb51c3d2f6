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
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

/**
 * This process's embedded Hazelcast member. Members carry their role and rank as attributes, so a lost member
 * is reported by rank; workers publish their data-plane endpoint under their rank for the others to find.
 */
public final class ClusterNode implements AutoCloseable {

    private static final String ENDPOINTS = "tessera.endpoints";

    private final HazelcastInstance hazelcast;
    private final MemberInfo self;

    private ClusterNode(HazelcastInstance hazelcast, MemberInfo self) {
        this.hazelcast = hazelcast;
        this.self = self;
    }

    /** Starts a member and joins the job's cluster (Hazelcast's own join waits are bounded by its settings). */
    public static ClusterNode join(ClusterSettings settings, String role, int rank) {
        Config config = new Config();
        config.setClusterName(settings.clusterName());
        config.setInstanceName(settings.clusterName() + "-" + role + (rank >= 0 ? "-" + rank : ""));
        config.setProperty("hazelcast.heartbeat.interval.seconds", Integer.toString(settings.heartbeatSeconds()));
        config.setProperty("hazelcast.max.no.heartbeat.seconds", Integer.toString(settings.maxNoHeartbeatSeconds()));
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
        HazelcastInstance hz = Hazelcast.newHazelcastInstance(config);
        return new ClusterNode(hz, describe(hz.getCluster().getLocalMember()));
    }

    public MemberInfo self() {
        return self;
    }

    public int memberCount() {
        return hazelcast.getCluster().getMembers().size();
    }

    /** Calls {@code onLost} from Hazelcast's event thread for every member that leaves or is declared dead. */
    public void onMemberLost(Consumer<MemberInfo> onLost) {
        hazelcast.getCluster().addMembershipListener(new MembershipListener() {
            @Override
            public void memberAdded(MembershipEvent event) {
            }

            @Override
            public void memberRemoved(MembershipEvent event) {
                onLost.accept(describe(event.getMember()));
            }
        });
    }

    /** Publishes this rank's data-plane endpoint for {@link #awaitEndpoints}. */
    public void publishEndpoint(int rank, String endpoint) {
        endpoints().put(rank, endpoint);
    }

    /**
     * Waits until ranks {@code 0..world-1} have all published an endpoint.
     *
     * @throws TimeoutException naming the ranks that did not publish within {@code deadline}
     */
    public Map<Integer, String> awaitEndpoints(int world, Duration deadline) throws TimeoutException, InterruptedException {
        long end = System.nanoTime() + deadline.toNanos();
        IMap<Integer, String> map = endpoints();
        while (true) {
            Map<Integer, String> found = new TreeMap<>();
            StringBuilder missing = new StringBuilder();
            for (int r = 0; r < world; r++) {
                String endpoint = map.get(r);
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
                        + hazelcast.getConfig().getClusterName() + ")");
            }
            Thread.sleep(20);
        }
    }

    @Override
    public void close() {
        hazelcast.shutdown();
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
