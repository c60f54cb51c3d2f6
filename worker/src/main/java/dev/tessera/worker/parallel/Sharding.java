package dev.tessera.worker.parallel;

import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.ShardReducer;
import dev.tessera.worker.model.ParameterStore;

/**
 * How one replica's model state is split across its data-parallel group: how gradients are reduced, where
 * parameters live, which range of the flat buffers this rank's optimizer owns, and how the optimizer sums its
 * few cross-shard statistics. Without ZeRO the optimizer owns everything and needs no reduction.
 */
public record Sharding(GradientSync gradients, ParameterSync parameters, Shard shard, ShardReducer optimizerReducer) {

    /** One replica owning all of its state. */
    public static Sharding none(ParameterStore params) {
        return replicated(GradientSync.NONE, params);
    }

    /** Data parallelism without ZeRO: every replica holds and updates everything. */
    public static Sharding replicated(GradientSync gradients, ParameterStore params) {
        return new Sharding(gradients, ParameterSync.RESIDENT, Shard.whole(params.numel()), ShardReducer.LOCAL);
    }
}
