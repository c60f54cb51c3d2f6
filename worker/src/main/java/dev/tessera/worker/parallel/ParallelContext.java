package dev.tessera.worker.parallel;

/**
 * All the training step knows about parallelism: where this rank sits in the mesh, how its gradients are
 * reduced, and how replicas agree on small numbers. A single process uses {@link #single()}.
 */
public record ParallelContext(Mesh mesh, int rank, GradientSync gradients, ReplicaReducer reducer) {

    public static ParallelContext single() {
        return new ParallelContext(Mesh.SINGLE, 0, GradientSync.NONE, ReplicaReducer.LOCAL);
    }

    /** The sequences of the global batch this rank trains on. */
    public Mesh.Range batchSlice(int globalBatch) {
        return mesh.batchSlice(rank, globalBatch);
    }

    public boolean isSingle() {
        return mesh.world() == 1;
    }
}
