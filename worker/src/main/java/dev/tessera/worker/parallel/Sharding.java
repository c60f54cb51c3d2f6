package dev.tessera.worker.parallel;

import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.ShardReducer;
import dev.tessera.worker.model.GradientSync;
import dev.tessera.worker.model.ParameterSync;
import dev.tessera.worker.model.ReplicaReducer;

/**
 * What {@link Parallelize} installed into one replica, as the training step, the optimizer and checkpoints need
 * it: how gradients are reduced, where parameters live, how replicas sum small numbers (losses), which range of
 * the flat buffers this rank's optimizer owns, and how the optimizer sums its few cross-shard statistics.
 * Without ZeRO the optimizer owns everything and needs no reduction. {@code parameterShard} is the range of the
 * parameter buffer the rank keeps between uses, and so the only range initialisation and checkpoint loading write:
 * the optimizer's shard under ZeRO-3, else everything.
 */
public record Sharding(GradientSync gradients, ParameterSync parameters, ReplicaReducer replicas, Shard shard,
                       ShardReducer optimizerReducer, Shard parameterShard) {
}
