package dev.tessera.worker.parallel;

import dev.tessera.optimizers.Optimizer;
import dev.tessera.optimizers.OptimizerParts;
import dev.tessera.optimizers.OptimizerSpec;
import dev.tessera.optimizers.ParamSpan;
import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.ShardReducer;
import dev.tessera.worker.model.GradientSync;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.ParameterSync;
import dev.tessera.worker.model.ReplicaReducer;
import java.util.ArrayList;
import java.util.List;

/**
 * What {@link Parallelize} installed into one replica, as the training step, the optimizer and checkpoints need
 * it: how gradients are reduced, where parameters live, how replicas sum small numbers (losses), which ranges of
 * the flat buffers this rank's optimizer owns and how it sums its few cross-shard statistics for each
 * ({@link #optimizerParts}), and {@code parameterShards}: the ranges of the parameter buffer the rank keeps between
 * uses, and so the only ranges initialisation and checkpoint loading write (the optimizer's shards under ZeRO-3,
 * else everything). Without ZeRO the optimizer owns everything and needs no reduction; with ZeRO and expert
 * parallelism it owns a shard of the dense tensors and one of its experts, each over its own group.
 */
public record Sharding(GradientSync gradients, ParameterSync parameters, ReplicaReducer replicas,
                       List<OptimizerPart> optimizerParts, List<Shard> parameterShards) {

    /** The optimizer's part over {@code spans}: it updates {@code shard} and sums its statistics by {@code reducer}. */
    public record OptimizerPart(List<ParamSpan> spans, Shard shard, ShardReducer reducer) {
    }

    public Sharding {
        optimizerParts = List.copyOf(optimizerParts);
        parameterShards = List.copyOf(parameterShards);
    }

    /** One optimizer part over all of {@code spans}. */
    Sharding(GradientSync gradients, ParameterSync parameters, ReplicaReducer replicas, List<ParamSpan> spans,
             Shard shard, ShardReducer reducer, Shard parameterShard) {
        this(gradients, parameters, replicas, List.of(new OptimizerPart(spans, shard, reducer)),
                List.of(parameterShard));
    }

    /** This rank's optimizer over {@code store}'s buffers: one per part, together when there are several. */
    public Optimizer optimizer(OptimizerSpec spec, ParameterStore store) {
        List<Optimizer> parts = new ArrayList<>();
        for (OptimizerPart part : optimizerParts) {
            parts.add(spec.create(store.params(), store.grads(), part.spans(), part.shard(), part.reducer()));
        }
        return parts.size() == 1 ? parts.get(0) : new OptimizerParts(parts);
    }
}
