package dev.tessera.worker.parallel;

import dev.tessera.worker.model.FlatMemory;
import dev.tessera.worker.model.ParameterStore;

/**
 * All the training step knows about parallelism: where this rank sits in the mesh, how replicas agree on
 * small numbers, where the gradient buffer lives (memory the data-parallel group maps, for its collectives to
 * read directly) and how a replica's parameters, gradients and optimizer state are split and reduced. A single
 * process uses {@link #single()}.
 */
public record ParallelContext(Mesh mesh, int rank, ReplicaReducer reducer, FlatMemory gradientMemory,
                              ShardingFactory sharding) {

    /** Builds a replica's {@link Sharding} from its parameters and the model's units ({@code Transformer.unitBounds}). */
    @FunctionalInterface
    public interface ShardingFactory {
        Sharding create(ParameterStore params, long[] unitBounds);
    }

    public static ParallelContext single() {
        return new ParallelContext(Mesh.SINGLE, 0, ReplicaReducer.LOCAL, FlatMemory.ND4J,
                (params, units) -> Sharding.none(params));
    }

    /** The sequences of the global batch this rank trains on. */
    public Mesh.Range batchSlice(int globalBatch) {
        return mesh.batchSlice(rank, globalBatch);
    }

    public boolean isSingle() {
        return mesh.world() == 1;
    }
}
