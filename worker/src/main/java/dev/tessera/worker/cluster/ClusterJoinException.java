package dev.tessera.worker.cluster;

/** This process could not join its job's Hazelcast cluster in time; the message names the ports. */
public final class ClusterJoinException extends RuntimeException {

    public ClusterJoinException(String message) {
        super(message);
    }
}
