package dev.tessera.worker.parallel;

import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.ShardReducer;
import dev.tessera.worker.model.Block;
import dev.tessera.worker.model.ExpertShard;
import dev.tessera.worker.model.FlatMemory;
import dev.tessera.worker.model.GradientSync;
import dev.tessera.worker.model.KvExchange;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.ParameterSync;
import dev.tessera.worker.model.ReplicaReducer;
import dev.tessera.worker.model.TokenDispatch;
import dev.tessera.worker.model.Transformer;

/**
 * The one place where the mesh is applied to a model, as torchtitan's {@code parallelize_llama}: it installs, into
 * a built model, how attention exchanges K/V (sequence parallelism), how MoE dispatches tokens to experts
 * (expert parallelism), how gradients are reduced (bucketed all-reduce, or ZeRO 1-3, each bucket through a
 * {@link GradientCodec}), where parameters live (ZeRO-3 gathers them per layer), and how replicas sum the MoE
 * routing statistics. Every strategy is picked from the {@link DeviceMesh}'s groups; a local group gets the local
 * strategy, so a single process runs the same model code with nothing installed that communicates.
 */
public final class Parallelize {

    private Parallelize() {
    }

    /**
     * Where the model's gradient buffer must live, decided before the model is built: plain data parallelism
     * keeps it in memory the data-parallel group maps, so that its all-reduce reads peers' gradients directly.
     * ZeRO stages return gradient pages to the OS between uses, which a shared mapping cannot do; from stage 2 on
     * a rank writes only its shard and the buckets in flight, so the buffer is reserved pages that cost nothing
     * until written (stage 1 reduces the whole buffer after backward, so it is all written anyway).
     */
    public static FlatMemory gradientMemory(DeviceMesh mesh, ParallelSpec spec) {
        MeshGroup dp = mesh.dataParallel();
        if (dp.isLocal()) {
            return FlatMemory.ND4J;
        }
        if (spec.zeroStage() == 0) {
            return new SymmetricFlatMemory(dp.process());
        }
        return spec.zeroStage() >= 2 ? ReservedFlatMemory.INSTANCE : FlatMemory.ND4J;
    }

    /**
     * Where the model's parameter buffer lives: ZeRO-3 keeps it in reserved pages, of which a rank writes only its
     * shard ({@link Sharding#parameterShard}) and the units gathered in flight, so it never holds a whole replica.
     */
    public static FlatMemory parameterMemory(DeviceMesh mesh, ParallelSpec spec) {
        return spec.zeroStage() == 3 && !mesh.dataParallel().isLocal() ? ReservedFlatMemory.INSTANCE : FlatMemory.ND4J;
    }

    /**
     * The experts of each MoE layer this rank holds, decided before the model is built: its share of the expert
     * group's, or all of them without expert parallelism.
     */
    public static ExpertShard heldExperts(DeviceMesh mesh, int nExperts) {
        if (mesh.expertParallel().isLocal() || nExperts == 0) {
            return ExpertShard.all(nExperts);
        }
        Mesh.Range owned = mesh.mesh().ownedExperts(mesh.rank(), nExperts);
        return new ExpertShard(owned.start(), owned.size());
    }

    /** A tensor of one expert (held by some ranks only), not of the router or the dense layers. */
    public static boolean isExpertTensor(String name) {
        return name.contains(".experts.");
    }

    /**
     * Installs the strategies of {@code mesh} into {@code model} (built with {@link #gradientMemory}) and returns
     * what the training step and the optimizer need of them. {@code probe} samples ZeRO's resident memory.
     */
    public static Sharding apply(Transformer model, DeviceMesh mesh, ParallelSpec spec, MemoryProbe probe) {
        if (spec.zeroStage() > 0 && spec.codec() != GradientCodec.IDENTITY) {
            throw new IllegalArgumentException("gradient compression works with plain data parallelism only, not with"
                    + " ZeRO stage " + spec.zeroStage() + " (ZeRO reduce-scatters whole buckets)");
        }
        if (!mesh.sequenceParallel().isLocal()) {
            throw new UnsupportedOperationException("sequence parallelism is planned but not implemented; " + mesh);
        }
        MeshGroup ep = mesh.expertParallel();
        if (!ep.isLocal() && spec.zeroStage() > 0) {
            throw new UnsupportedOperationException("expert parallelism runs with ZeRO stage 0 so far, not "
                    + spec.zeroStage() + "; " + mesh);
        }
        MeshGroup dp = mesh.dataParallel();
        GroupReplicaReducer sums = dp.isLocal() ? null : new GroupReplicaReducer(dp.process());
        ReplicaReducer replicas = sums == null ? ReplicaReducer.LOCAL : sums;
        for (Block block : model.blocks()) {
            block.attention().useKvExchange(KvExchange.LOCAL);
            if (block.isMoe()) {
                block.moe().useTokenDispatch(ep.isLocal() ? TokenDispatch.LOCAL : new ExpertAllToAll(ep.process(),
                        block.moe().heldExperts(), model.config().dModel(), model.parameters().dataType(),
                        block.moe().maxExchangeRows(ep.size())));
                block.moe().useReplicaReducer(replicas);
                // Replica r holds batch slice r of the global batch: its tokens draw as they would in one process.
                block.moe().useTokenOffset((long) dp.rank() * model.batch() * model.seq());
            }
        }
        Sharding sharding = ep.isLocal() ? shard(model, dp, sums, spec, probe) : expertParallel(model, mesh, sums, spec);
        model.useGradientSync(sharding.gradients());
        model.useParameterSync(sharding.parameters());
        return sharding;
    }

    /**
     * Expert parallelism with plain data parallelism: dense gradients all-reduced over the data-parallel group,
     * expert gradients over the expert-data-parallel group; each rank's optimizer keeps the state of everything
     * it holds.
     */
    private static Sharding expertParallel(Transformer model, DeviceMesh mesh, GroupReplicaReducer sums,
                                           ParallelSpec spec) {
        ParameterStore params = model.parameters();
        Shard whole = Shard.whole(params.numel());
        GradientSync dense = new BucketedAllReduce(mesh.dataParallel().process(), spec.codec(), params.grads(),
                ExpertParallelGradients.select(params, name -> !isExpertTensor(name)), spec.bucketElements());
        MeshGroup expertReplicas = mesh.expertDataParallel();
        GradientSync experts = expertReplicas.isLocal() ? GradientSync.NONE
                : new BucketedAllReduce(expertReplicas.process(), GradientCodec.IDENTITY, params.grads(),
                        ExpertParallelGradients.select(params, Parallelize::isExpertTensor), spec.bucketElements());
        GradientSync gradients = new ExpertParallelGradients(dense, experts, mesh.expertParallel().process(), params,
                Parallelize::isExpertTensor);
        return new Sharding(gradients, ParameterSync.RESIDENT, sums, whole, ShardReducer.LOCAL, whole);
    }

    /**
     * Plain data parallelism: bucketed all-reduce, every replica owning everything. ZeRO: the shards, with one more
     * group for the gradients and one for the parameters so that their collectives run side by side.
     */
    private static Sharding shard(Transformer model, MeshGroup dp, GroupReplicaReducer sums, ParallelSpec spec,
                                  MemoryProbe probe) {
        ParameterStore params = model.parameters();
        Shard whole = Shard.whole(params.numel());
        if (sums == null) { // one replica: nothing to reduce, ZeRO or not
            return new Sharding(GradientSync.NONE, ParameterSync.RESIDENT, ReplicaReducer.LOCAL, whole,
                    ShardReducer.LOCAL, whole);
        }
        if (spec.zeroStage() == 0) {
            GradientSync allReduce = new BucketedAllReduce(dp.process(), spec.codec(), params.grads(),
                    params.tensors(), spec.bucketElements());
            return new Sharding(allReduce, ParameterSync.RESIDENT, sums, whole, ShardReducer.LOCAL, whole);
        }
        ZeroSharding zero = new ZeroSharding(dp.channel("zero-gradients"), dp.channel("zero-parameters"), sums,
                spec.zeroStage(), params, spec.optimizer(), model.unitBounds(), spec.bucketElements(), probe);
        return new Sharding(zero, zero, sums, zero.shard(), sums, spec.zeroStage() == 3 ? zero.shard() : whole);
    }
}
