package dev.tessera.comm;

import java.util.ArrayList;
import java.util.List;

/** A fixed list of endpoints, known in advance by every process (tests, benchmark, single host). */
public final class StaticPeerDirectory implements PeerDirectory {

    private final List<PeerEndpoint> endpoints;

    public StaticPeerDirectory(List<PeerEndpoint> endpoints) {
        for (int i = 0; i < endpoints.size(); i++) {
            if (endpoints.get(i).rank() != i) {
                throw new IllegalArgumentException("endpoint " + i + " is for rank " + endpoints.get(i).rank());
            }
        }
        this.endpoints = List.copyOf(endpoints);
    }

    /** {@code worldSize} ranks on this host, UDP ports {@code basePort + rank} on 127.0.0.1. */
    public static StaticPeerDirectory localhost(int worldSize, int basePort) {
        List<PeerEndpoint> list = new ArrayList<>();
        for (int r = 0; r < worldSize; r++) {
            list.add(new PeerEndpoint(r, "localhost", "127.0.0.1", basePort + r));
        }
        return new StaticPeerDirectory(list);
    }

    @Override
    public int worldSize() {
        return endpoints.size();
    }

    @Override
    public PeerEndpoint endpoint(int rank) {
        return endpoints.get(rank);
    }
}
