package dev.tessera.worker.model;

/**
 * Sums a few numbers over the replicas that share a batch (the data-parallel group): losses, token counts,
 * MoE routing statistics. Every replica gets the same result, so they keep deciding identically.
 */
public interface ReplicaReducer {

    /** A single replica: the local values are already the sums. */
    ReplicaReducer LOCAL = values -> {
    };

    /** Replaces every element by its sum over the replicas, in a fixed order. */
    void sumInPlace(double[] values);
}
