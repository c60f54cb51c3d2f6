package dev.tessera.worker.parallel;

import dev.tessera.comm.HierarchicalAllToAll;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.ShardReducer;
import dev.tessera.worker.model.Block;
import dev.tessera.worker.model.ExpertShard;
import dev.tessera.worker.model.FlatMemory;
import dev.tessera.worker.model.GradientSync;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.ParameterSync;
import dev.tessera.worker.model.ReplicaReducer;
import dev.tessera.worker.model.SequenceAttention;
import dev.tessera.worker.model.SequenceShard;
import dev.tessera.worker.model.TokenDispatch;
import dev.tessera.worker.model.Transformer;
import java.util.ArrayList;
import java.util.List;

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
        MeshGroup dp = mesh.workers();
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
        return spec.zeroStage() == 3 && !mesh.workers().isLocal() ? ReservedFlatMemory.INSTANCE : FlatMemory.ND4J;
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

    /**
     * The positions of each sequence of {@code seq} tokens that {@code rank} of {@code mesh} holds: every one
     * without sequence parallelism, else its share in the placement of {@code scheme}.
     */
    public static int[] sequencePositions(Mesh mesh, int rank, SequenceScheme scheme, int seq) {
        if (mesh.sp() == 1) {
            return SequenceShard.run(0, seq);
        }
        return scheme.placement().positions(seq, mesh.sp(), mesh.coords(rank).s());
    }

    /**
     * This rank's tokens of each sequence, and the attention that reaches the other ranks' (decided before the model
     * is built, as the experts are): whole sequences without sequence parallelism.
     */
    public static SequenceShard sequenceShard(DeviceMesh mesh, ParallelSpec spec, int seq) {
        MeshGroup sp = mesh.sequenceParallel();
        if (sp.isLocal()) {
            return SequenceShard.whole(seq);
        }
        int[][] positions = new int[sp.size()][];
        for (int s = 0; s < positions.length; s++) {
            positions[s] = spec.sequence().placement().positions(seq, sp.size(), s);
        }
        ProcessGroup group = sp.process();
        SequenceAttention.Factory attention = switch (spec.sequence()) {
            case ALLGATHER -> AllGatherKvAttention.factory(group, positions);
            case ULYSSES -> UlyssesAttention.factory(group, positions);
            case RING -> RingKvAttention.factory(group, positions);
        };
        return new SequenceShard(positions[sp.rank()], attention);
    }

    /**
     * Installs the strategies of {@code mesh} into {@code model} (built with {@link #gradientMemory}) and returns
     * what the training step and the optimizer need of them. {@code probe} samples ZeRO's resident memory.
     */
    public static Sharding apply(Transformer model, DeviceMesh mesh, ParallelSpec spec, MemoryProbe probe) {
        boolean compressed = spec.codec() != GradientCodec.IDENTITY;
        if (compressed && (spec.zeroStage() > 2 || !mesh.expertParallel().isLocal()
                || !mesh.sequenceParallel().isLocal())) {
            throw new IllegalArgumentException("gradient compression works with data parallelism at ZeRO stage 0-2"
                    + " only, not with ZeRO stage " + spec.zeroStage() + ", expert or sequence parallelism");
        }
        MeshGroup ep = mesh.expertParallel();
        MeshGroup dp = mesh.workers(); // every rank holds the dense parameters, whatever its sequences or tokens
        GroupReplicaReducer sums = dp.isLocal() ? null : new GroupReplicaReducer(dp.process());
        ReplicaReducer replicas = sums == null ? ReplicaReducer.LOCAL : sums;
        HierarchicalAllToAll twoHop = ep.isLocal() || spec.ranksPerNode() == ParallelSpec.FLAT ? null
                : ep.hierarchicalAllToAll(spec.ranksPerNode() == ParallelSpec.PER_HOST ? ep.membersPerHost()
                        : spec.ranksPerNode());
        for (Block block : model.blocks()) {
            if (block.isMoe()) {
                block.moe().useTokenDispatch(ep.isLocal() ? TokenDispatch.LOCAL : new ExpertAllToAll(ep.process(),
                        twoHop, block.moe().heldExperts(), model.config().dModel(), model.parameters().dataType(),
                        block.moe().maxExchangeRows(ep.size()), spec.overlapExperts()));
                block.moe().useReplicaReducer(replicas);
                // Replica (d, s) holds positions of batch slice d: its tokens draw as they would in one process.
                block.moe().useTokenPlace((long) mesh.mesh().coords(mesh.rank()).d() * model.batch(),
                        model.seq() * mesh.sequenceParallel().size(), model.sequenceShard().positions());
            }
        }
        Sharding sharding = ep.isLocal() ? shard(model, dp, sums, spec, probe)
                : expertParallel(model, mesh, sums, spec, probe);
        model.useGradientSync(sharding.gradients());
        model.useParameterSync(sharding.parameters());
        return sharding;
    }

    /**
     * Expert parallelism: the dense tensors are replicated over the data-parallel group, the held experts over the
     * expert-data-parallel group (none when each expert lives on one rank), and the layout keeps the two apart
     * (dense first). Without ZeRO each is all-reduced over its group and the optimizer keeps the state of
     * everything the rank holds. With ZeRO each region is sharded over its group, and the optimizer is two parts,
     * each over its own shard with its own group's reducer; at stage 3 a unit is gathered as its dense range over
     * the data-parallel group and its experts' range over the expert-data-parallel group.
     */
    private static Sharding expertParallel(Transformer model, DeviceMesh mesh, GroupReplicaReducer sums,
                                           ParallelSpec spec, MemoryProbe probe) {
        ParameterStore params = model.parameters();
        FlatRegion denseRegion = FlatRegion.of(params, name -> !ExpertShard.isExpertTensor(name));
        FlatRegion expertRegion = FlatRegion.of(params, ExpertShard::isExpertTensor);
        ExpertParallelUnits units = ExpertParallelUnits.of(params, model.unitBounds());
        MeshGroup dp = mesh.workers();
        MeshGroup expertReplicas = mesh.expertDataParallel();
        ProcessGroup expertGroup = mesh.expertParallel().process();
        Shard whole = Shard.whole(params.numel());
        if (spec.zeroStage() == 0) {
            GradientSync dense = new BucketedAllReduce(dp.process(), spec.codec(), params.grads(),
                    denseRegion.tensors(), spec.bucketElements());
            GradientSync experts = expertReplicas.isLocal() ? GradientSync.NONE
                    : new BucketedAllReduce(expertReplicas.process(), GradientCodec.IDENTITY, params.grads(),
                            expertRegion.tensors(), spec.bucketElements());
            return new Sharding(new ExpertParallelGradients(dense, experts, expertGroup, params, units),
                    ParameterSync.RESIDENT, sums, params.spans(), whole, ShardReducer.LOCAL, whole);
        }
        ZeroSharding dense = new ZeroSharding(dp.channel("zero-gradients"), dp.channel("zero-parameters"), sums,
                spec.zeroStage(), params, denseRegion, spec.optimizer(), units.denseBounds(), null,
                spec.bucketElements(), probe);
        List<Sharding.OptimizerPart> parts = new ArrayList<>();
        parts.add(new Sharding.OptimizerPart(denseRegion.spans(), dense.shard(), sums));
        Shard denseKept = spec.zeroStage() == 3 ? dense.shard() : denseRegion.shard();
        if (expertReplicas.isLocal()) {
            // Each expert on one rank: its state, gradients and parameters are already this rank's alone.
            parts.add(new Sharding.OptimizerPart(expertRegion.spans(), expertRegion.shard(), ShardReducer.LOCAL));
            return new Sharding(new ExpertParallelGradients(dense, GradientSync.NONE, expertGroup, params, units),
                    dense, sums, parts, List.of(denseKept, expertRegion.shard()));
        }
        // The expert shards' squares are summed over every rank, where each expert element is owned exactly once.
        ZeroSharding experts = new ZeroSharding(expertReplicas.channel("zero-gradients"),
                expertReplicas.channel("zero-parameters"), sums, spec.zeroStage(), params, expertRegion,
                spec.optimizer(), units.expertBounds(), null, spec.bucketElements(), probe);
        parts.add(new Sharding.OptimizerPart(expertRegion.spans(), experts.shard(),
                new GroupReplicaReducer(expertReplicas.process())));
        Shard expertsKept = spec.zeroStage() == 3 ? experts.shard() : expertRegion.shard();
        return new Sharding(new ExpertParallelGradients(dense, experts, expertGroup, params, units),
                both(dense, experts), sums, parts, List.of(denseKept, expertsKept));
    }

    /** {@code first}'s parameters, then {@code second}'s: each region's all-gather after the step. */
    private static ParameterSync both(ParameterSync first, ParameterSync second) {
        return new ParameterSync() {
            @Override
            public void acquire(int unit, int next) {
                first.acquire(unit, next);
                second.acquire(unit, next);
            }

            @Override
            public void release(int unit) {
                first.release(unit);
                second.release(unit);
            }

            @Override
            public void releaseFrom(int unit, long fromElement, int next) {
                first.releaseFrom(unit, fromElement, next);
                second.releaseFrom(unit, fromElement, next);
            }

            @Override
            public void releaseAttention(int unit) {
                first.releaseAttention(unit);
                second.releaseAttention(unit);
            }

            @Override
            public void reacquireAttention(int unit, int next) {
                first.reacquireAttention(unit, next);
                second.reacquireAttention(unit, next);
            }

            @Override
            public void afterUpdate() {
                first.afterUpdate();
                second.afterUpdate();
            }
        };
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
            return new Sharding(GradientSync.NONE, ParameterSync.RESIDENT, ReplicaReducer.LOCAL, params.spans(),
                    whole, ShardReducer.LOCAL, whole);
        }
        if (spec.zeroStage() == 0) {
            GradientSync allReduce = new BucketedAllReduce(dp.process(), spec.codec(), params.grads(),
                    params.tensors(), spec.bucketElements());
            return new Sharding(allReduce, ParameterSync.RESIDENT, sums, params.spans(), whole, ShardReducer.LOCAL,
                    whole);
        }
        ZeroSharding zero = new ZeroSharding(dp.channel("zero-gradients"), dp.channel("zero-parameters"), sums,
                spec.zeroStage(), params, spec.optimizer(), model.unitBounds(), model.ffnStarts(),
                spec.bucketElements(), probe);
        if (spec.codec() != GradientCodec.IDENTITY) {
            // Compressed: every rank decodes the whole summed gradient (its error feedback is whole anyway), steps
            // its shard, and ZeRO all-gathers the parameters; stage 2 then keeps gradients as stage 1 does.
            GradientSync allReduce = new BucketedAllReduce(dp.process(), spec.codec(), params.grads(),
                    params.tensors(), spec.bucketElements());
            return new Sharding(allReduce, zero, sums, params.spans(), zero.shard(), sums, whole);
        }
        return new Sharding(zero, zero, sums, params.spans(), zero.shard(), sums,
                spec.zeroStage() == 3 ? zero.shard() : whole);
    }
}
