package dev.tessera.worker.parallel;

import dev.tessera.worker.model.ParameterStore;
import java.util.function.Function;

/**
 * All the training step knows about parallelism: where this rank sits in the mesh, how replicas agree on
 * small numbers, and how to build the gradient reduction for a replica's parameters. A single process uses
 * {@link #single()}.
 */
public record ParallelContext(Mesh mesh, int rank, ReplicaReducer reducer,
                              Function<ParameterStore, GradientSync> gradientSync) {

    public static ParallelContext single() {
        return new ParallelContext(Mesh.SINGLE, 0, ReplicaReducer.LOCAL, params -> GradientSync.NONE);
    }

    /** The sequences of the global batch this rank trains on. */
    public Mesh.Range batchSlice(int globalBatch) {
        return mesh.batchSlice(rank, globalBatch);
    }

    public boolean isSingle() {
        return mesh.world() == 1;
    }
}
