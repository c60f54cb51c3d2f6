package dev.tessera.worker.run;

import dev.tessera.comm.PeerEndpoint;
import dev.tessera.comm.StaticPeerDirectory;
import dev.tessera.worker.cluster.ClusterNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeoutException;

/**
 * Aeron endpoints exchanged through Hazelcast: each process publishes "hostId address port" under its rank;
 * the workers are ranks {@code 0..W-1} and the coordinator is rank {@code W}.
 */
public final class Rendezvous {

    private Rendezvous() {
    }

    private static void publish(ClusterNode node, PeerEndpoint self) {
        node.publishEndpoint(self.rank(), self.hostId() + " " + self.address() + " " + self.port());
    }

    /**
     * Publishes {@code self} and waits for all {@code processes} endpoints. The endpoint is published again every
     * second while waiting: members that started at the same moment on a loaded machine may first form separate
     * clusters, and an entry written before the clusters merged can be lost in the merge.
     */
    public static StaticPeerDirectory await(ClusterNode node, PeerEndpoint self, int processes, Duration deadline)
            throws TimeoutException, InterruptedException {
        long end = System.nanoTime() + deadline.toNanos();
        while (true) {
            publish(node, self);
            try {
                return directory(node.awaitEndpoints(processes, Duration.ofSeconds(1)), processes);
            } catch (TimeoutException e) {
                if (System.nanoTime() > end) {
                    throw new TimeoutException(e.getMessage().replace("within 1 s", "within "
                            + deadline.toSeconds() + " s"));
                }
            }
        }
    }

    private static StaticPeerDirectory directory(Map<Integer, String> published, int processes) {
        List<PeerEndpoint> endpoints = new ArrayList<>();
        for (int r = 0; r < processes; r++) {
            String[] parts = published.get(r).split(" ");
            if (parts.length != 3) {
                throw new IllegalStateException("rank " + r + " published a malformed endpoint '" + published.get(r) + "'");
            }
            endpoints.add(new PeerEndpoint(r, parts[0], parts[1], Integer.parseInt(parts[2])));
        }
        return new StaticPeerDirectory(endpoints);
    }
}
