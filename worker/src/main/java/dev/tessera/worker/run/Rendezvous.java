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

    public static void publish(ClusterNode node, PeerEndpoint self) {
        node.publishEndpoint(self.rank(), self.hostId() + " " + self.address() + " " + self.port());
    }

    /** Waits for all {@code processes} endpoints and turns them into a peer directory. */
    public static StaticPeerDirectory await(ClusterNode node, int processes, Duration deadline)
            throws TimeoutException, InterruptedException {
        Map<Integer, String> published = node.awaitEndpoints(processes, deadline);
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
