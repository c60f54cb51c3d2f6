package dev.tessera.comm;

/**
 * Rendezvous: the endpoint of every rank of the job. Tests and the benchmark use {@link StaticPeerDirectory};
 * the coordinator will publish endpoints through its membership service instead.
 */
public interface PeerDirectory {

    int worldSize();

    PeerEndpoint endpoint(int rank);
}
