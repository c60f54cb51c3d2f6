package dev.tessera.worker.run;

import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.UserInputException;
import dev.tessera.optimizers.Optimizer;
import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.StateSlice;
import dev.tessera.worker.checkpoint.Checkpoint;
import dev.tessera.worker.checkpoint.CheckpointWriter;
import dev.tessera.worker.checkpoint.OptimizerShards;
import dev.tessera.worker.data.TokenSource;
import dev.tessera.optimizers.co2.Co2Config;
import dev.tessera.optimizers.co2.Co2OuterStep;
import dev.tessera.optimizers.co2.GapPenalty;
import dev.tessera.worker.job.AllToAllKind;
import dev.tessera.worker.job.Co2Section;
import dev.tessera.worker.job.GapPenaltyMode;
import dev.tessera.worker.model.Block;
import dev.tessera.worker.model.GradientSync;
import dev.tessera.worker.model.ReplicaReducer;
import dev.tessera.worker.job.MoeSection;
import dev.tessera.worker.model.ExpertShard;
import dev.tessera.worker.model.ModelShard;
import dev.tessera.worker.model.ParameterSync;
import dev.tessera.worker.model.Transformer;
import dev.tessera.worker.parallel.DeviceMesh;
import dev.tessera.worker.parallel.ExpertParallelUnits;
import dev.tessera.worker.parallel.MemoryProbe;
import dev.tessera.worker.parallel.MeshGroup;
import dev.tessera.worker.parallel.Mesh;
import dev.tessera.worker.parallel.CompressedGradients;
import dev.tessera.worker.parallel.ParallelSpec;
import dev.tessera.worker.parallel.Parallelize;
import dev.tessera.worker.parallel.Sharding;
import dev.tessera.worker.train.Checkpointer;
import dev.tessera.worker.train.Co2Step;
import dev.tessera.worker.train.DeferredSum;
import dev.tessera.worker.train.GroupDeferredSum;
import dev.tessera.worker.train.SynchronousStep;
import dev.tessera.worker.train.TrainingStep;
import dev.tessera.worker.train.TrainingListener;
import dev.tessera.worker.train.TrainingLoop;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import org.agrona.concurrent.UnsafeBuffer;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * One model replica ready to train: its data, its model for this rank's slice of the batch with the mesh's
 * strategies installed ({@link Parallelize}), its optimizer, and, when resuming, the parameters and optimizer
 * state of the checkpoint. The same code serves a single process and every rank of a cluster; only the
 * {@link DeviceMesh} differs.
 */
public final class Replica {

    private final WorkerJob job;
    private final DeviceMesh mesh;
    private final TokenSource data;
    private final Transformer model;
    private final Sharding sharding;
    private final Optimizer optimizer;
    private final CompressedGradients compressed; // null unless gradients cross the wire compressed
    private final Co2Step co2; // null unless the job trains with CO2
    private final long completedSteps;

    private Replica(WorkerJob job, DeviceMesh mesh, TokenSource data, Transformer model, Sharding sharding,
                    Optimizer optimizer, CompressedGradients compressed, Co2Step co2, long completedSteps) {
        this.job = job;
        this.mesh = mesh;
        this.data = data;
        this.model = model;
        this.sharding = sharding;
        this.optimizer = optimizer;
        this.compressed = compressed;
        this.co2 = co2;
        this.completedSteps = completedSteps;
    }

    /** {@code probe} samples the resident memory of the flat buffers (ZeRO samples where they are fullest). */
    public static Replica build(WorkerJob job, DeviceMesh mesh, MemoryProbe probe) {
        return build(job, mesh, Parallelize.heldExperts(mesh, job.model().nExperts()),
                Parallelize.sequencePositions(mesh.mesh(), mesh.rank(), job.spec().mesh().spMode(),
                        job.train().seqLen()), probe);
    }

    /**
     * Holding the experts the coordinator assigned, which must be the mesh's share for this rank: the expert
     * group's all-to-all sends each expert's rows to the rank the mesh says holds it.
     */
    public static Replica build(WorkerJob job, DeviceMesh mesh, ExpertShard experts, int[] positions,
                                MemoryProbe probe) {
        ExpertShard planned = Parallelize.heldExperts(mesh, job.model().nExperts());
        if (!experts.equals(planned)) {
            throw new IllegalStateException("rank " + mesh.rank() + " was assigned experts " + experts + " but its"
                    + " mesh gives it " + planned + "; run the coordinator and its workers from the same build");
        }
        int seq = job.train().seqLen();
        int[] plannedPositions = Parallelize.sequencePositions(mesh.mesh(), mesh.rank(), job.spec().mesh().spMode(),
                seq);
        if (!Arrays.equals(positions, plannedPositions)) {
            throw new IllegalStateException("rank " + mesh.rank() + " was assigned other positions of each sequence"
                    + " than its mesh gives it; run the coordinator and its workers from the same build");
        }
        TokenSource data = job.data().open(seq);
        Mesh.Range slice = mesh.batchSlice(job.train().batchSize());
        MoeSection moe = job.spec().moe();
        ParallelSpec spec = ParallelSpec.of(job.zeroStage(), job.optimizer()).withAllToAll(
                moe.allToAll() == AllToAllKind.FLAT ? ParallelSpec.FLAT : moe.ranksPerNode(), moe.overlap())
                .withSequence(job.spec().mesh().spMode());
        boolean co2 = job.spec().co2().enabled();
        CompressedGradients compressed = !job.spec().compression().enabled() ? null
                : new CompressedGradients(job.spec().compression(), job.train().seed(), co2
                        ? (job.train().steps() + job.spec().co2().tau() - 1) / job.spec().co2().tau() // once a round
                        : job.train().steps());
        if (compressed != null && !co2) {
            spec = spec.withCodec(compressed);
        }
        ModelShard shard = new ModelShard(experts, Parallelize.sequenceShard(mesh, spec, seq));
        Transformer model = new Transformer(job.model(), job.float64() ? DataType.DOUBLE : DataType.FLOAT,
                slice.size(), Parallelize.parameterMemory(mesh, spec), Parallelize.gradientMemory(mesh, spec),
                job.spec().train().recomputePolicy(), shard);
        Sharding sharding = Parallelize.apply(model, mesh, spec, probe);
        if (co2) {
            // CO2's local steps reduce no gradients: each replica steps on its own slice (ALGORITHMS.md §6).
            if (job.zeroStage() != 0 || !mesh.expertParallel().isLocal() || !mesh.sequenceParallel().isLocal()) {
                throw new UserInputException("co2 with ZeRO, expert or sequence parallelism is not built yet"
                        + " (issue 19)");
            }
            model.useGradientSync(GradientSync.NONE);
            for (Block block : model.blocks()) { // a local step routes and balances on its own slice only
                if (block.isMoe()) {
                    block.moe().useReplicaReducer(ReplicaReducer.LOCAL);
                }
            }
            if (compressed != null && !mesh.workers().isLocal()) { // the outer deltas: all parameters, one bucket
                compressed.plan(co2Channel(mesh), model.parameters().tensors(),
                        new long[][] {{0, model.parameters().numel()}});
            }
        }
        if (compressed != null && !compressed.isPlanned()) {
            compressed = null; // one replica: there is nothing to send
        }
        // ZeRO-3: only the rank's shards are written (the rest of the buffer stays unbacked pages until gathered).
        List<Shard> kept = sharding.parameterShards();
        for (Shard range : kept) {
            model.initialize(job.train().seed(), range.from(), range.to());
        }
        Optimizer optimizer = sharding.optimizer(job.optimizer(), model.parameters());
        long completed = 0;
        Co2Step co2Step = null;
        if (job.resume() == null && co2) {
            co2Step = co2Step(job, mesh, model, optimizer, compressed);
        }
        if (job.resume() != null) {
            // Each tensor file is read once, hashed on the way in: the coordinator chose this checkpoint after
            // verifying it, and a file changed since is still refused, here, before training starts.
            Checkpoint checkpoint = Checkpoint.openToLoad(Path.of(job.resume()));
            if (!checkpoint.modelConfig().equals(job.model())) {
                throw new UserInputException("checkpoint " + checkpoint.dir() + " holds a model of shape "
                        + checkpoint.modelConfig() + ", but the job asks for " + job.model()
                        + "; resume with the checkpoint's model settings");
            }
            checkpoint.loadParameters(model.parameters(), kept); // a CO2 checkpoint's: the outer parameters x_t
            int co2Source = co2 ? Co2State.source(checkpoint, mesh.workers().rank()) : -1;
            if (co2Source >= 0) { // a CO2 rank's inner optimizer state is its own
                OptimizerShards.loadRank(checkpoint, co2Source, optimizer.state(), model.parameters());
            } else {
                OptimizerShards.load(checkpoint, optimizer.stateParts(), model.parameters());
            }
            if (co2) { // made after the parameters are in: without CO2 state in the checkpoint, its x_0 are these
                co2Step = co2Step(job, mesh, model, optimizer, compressed);
                if (co2Source >= 0) {
                    Co2State.load(checkpoint, co2Source, co2Step, model.parameters().params());
                }
            }
            if (compressed != null) {
                CompressionState.load(checkpoint, mesh.workers().rank(), mesh.workers().size(), compressed);
            }
            checkpoint.verifyRest();
            completed = checkpoint.step();
        }
        return new Replica(job, mesh, data, model, sharding, optimizer, compressed, co2Step, completed);
    }

    public TokenSource data() {
        return data;
    }

    public Transformer model() {
        return model;
    }

    public Optimizer optimizer() {
        return optimizer;
    }

    public long completedSteps() {
        return completedSteps;
    }

    /**
     * Trains to the job's last step. Checkpoints: alone, this replica writes them whole. In a cluster the
     * coordinator completes them (trainer state, then the manifest, written last) from a staging folder: without
     * ZeRO every rank holds the same parameters and optimizer state, so rank 0 stages one copy; with ZeRO every
     * rank writes its optimizer shard into the staging folder rank 0 made, and rank 0 the model.
     */
    public TrainingLoop.Result train(TrainingListener listener) throws IOException {
        Path runDir = Path.of(job.runDir());
        Checkpointer checkpointer;
        if (co2 != null) {
            checkpointer = this::checkpointCo2;
        } else if (mesh.isStandalone()) {
            checkpointer = step -> CheckpointWriter.write(runDir, step, job.model(), model.parameters(),
                    optimizer.state(), TrainerState.of(step, mesh.mesh(), job.spec().toMap()));
        } else if (job.zeroStage() == 0 && mesh.expertParallel().isLocal() && compressed == null) {
            checkpointer = mesh.rank() == 0 ? step -> CheckpointWriter.stageReplica(runDir, step, job.model(),
                    model.parameters(), optimizer.state()) : null;
        } else {
            checkpointer = this::stageShards;
        }
        Mesh.Range slice = mesh.batchSlice(job.train().batchSize());
        TrainingStep step = co2 != null ? co2
                : new SynchronousStep(model, optimizer, sharding.gradients(), sharding.parameters(),
                        TrainingLoop.tokenShare(slice, model.seq(), job.train()), job.train().gradClip());
        DeferredSum stepLoss = mesh.workers().isLocal() ? DeferredSum.local()
                : new GroupDeferredSum(mesh.workers().channel("step-loss"));
        TrainingLoop loop = new TrainingLoop(model, data, job.train(), slice, sharding.replicas(), stepLoss, step,
                listener, checkpointer);
        loop.countBytesSent(mesh.bytesSent());
        if (compressed != null) {
            loop.reportCompressionChoice(compressed::takeNewChoice);
        }
        return loop.run(completedSteps);
    }

    /** CO2's local steps, the parameters averaged once per round over the data-parallel group (ALGORITHMS.md §6). */
    private static Co2Step co2Step(WorkerJob job, DeviceMesh mesh, Transformer model, Optimizer optimizer,
                                   CompressedGradients compressed) {
        Co2Section c = job.spec().co2();
        Co2Config config = new Co2Config(c.tau(), c.outerLr(), c.outerMomentum(), c.gapPenalty(), c.clip(),
                c.clipThreshold());
        GapPenalty penalty = c.gapPenaltyMode() == GapPenaltyMode.GAP_SCALED ? GapPenalty.gapScaled(c.gapPenalty())
                : GapPenalty.constant(c.gapPenalty());
        MeshGroup replicas = mesh.workers();
        long numel = model.parameters().numel();
        ProcessGroup average = replicas.isLocal() ? null : co2Channel(mesh);
        // One replica owns everything anyway: shard_outer_state changes nothing there.
        boolean sharded = c.shardOuterState() && average != null;
        long[] bounds = sharded ? Co2Step.bounds(numel, replicas.size()) : null;
        Shard range = sharded ? new Shard(bounds[replicas.rank()], bounds[replicas.rank() + 1]) : Shard.whole(numel);
        Co2OuterStep outer = new Co2OuterStep(model.parameters().params(), model.parameters().spans(), config,
                penalty, range);
        // A channel of its own: the all-gather must not queue behind the reduce-scatter launched just before it.
        ProcessGroup gather = sharded ? replicas.channel("co2-outer-gather") : null;
        System.err.println("rank " + replicas.rank() + ": co2 outer state " + outer.stateBytes() + " bytes for"
                + " parameters " + range + " of " + numel + (sharded ? " (sharded over " + replicas.size()
                + " ranks; unsharded " + 3L * numel * Float.BYTES + ")" : ""));
        return new Co2Step(model, optimizer, average, outer, job.train().steps(), job.train().gradClip(),
                c.keepLocalProgress(), gather, bounds, compressed);
    }

    /** The channel CO2's averages go over: its own, so that the per-step loss sums do not queue behind them. */
    private static ProcessGroup co2Channel(DeviceMesh mesh) {
        return mesh.workers().channel("co2-parameters");
    }

    /**
     * A CO2 checkpoint: every rank writes its inner optimizer state and its {@link Co2State}; rank 0 writes the
     * model as the outer parameters. Alone, this replica commits it; in a cluster the coordinator does.
     */
    private Path checkpointCo2(long step) {
        MeshGroup replicas = mesh.workers();
        CheckpointWriter writer = mesh.isStandalone() ? CheckpointWriter.stage(Path.of(job.runDir()), step)
                : openStaging(step);
        try {
            boolean writesModel = replicas.rank() == 0;
            if (writesModel || co2.sharded()) { // sharded, every rank brings its range of x_t to the gather
                co2.withOuterParameters(() -> {
                    if (writesModel) {
                        writer.writeReplicaModel(job.model(), model.parameters());
                    }
                });
            }
            OptimizerShards.write(writer, replicas.rank(), optimizer.state(), model.parameters());
            Co2State.write(writer, replicas.rank(), co2, model.parameters().params());
            if (compressed != null) { // after the settle in Co2State.write: no reduction is changing the residuals
                CompressionState.write(writer, replicas.rank(), compressed);
            }
            if (mesh.isStandalone()) {
                writer.writeTrainerState(TrainerState.of(step, mesh.mesh(), job.spec().toMap()));
                return writer.commit();
            }
        } catch (RuntimeException | Error e) {
            if (mesh.isStandalone()) {
                writer.abort();
            }
            throw e;
        }
        replicas.barrier();
        return writer.stagingDir();
    }

    /**
     * A cluster checkpoint's staging folder: rank 0 makes it and broadcasts its random name, which is also the
     * barrier before anyone writes; the caller ends with a barrier after the writes.
     */
    private CheckpointWriter openStaging(long step) {
        MeshGroup replicas = mesh.workers();
        UnsafeBuffer name = new UnsafeBuffer(ByteBuffer.allocateDirect(Long.BYTES));
        if (replicas.rank() == 0) {
            long random = ThreadLocalRandom.current().nextLong(1L << 52);
            CheckpointWriter writer = CheckpointWriter.stage(Path.of(job.runDir()), step, Long.toHexString(random));
            name.putLong(0, random);
            replicas.broadcast(name, 0);
            return writer;
        }
        replicas.broadcast(name, 0);
        return CheckpointWriter.attach(CheckpointWriter.stagingDir(Path.of(job.runDir()), step,
                Long.toHexString(name.getLong(0))), step);
    }

    /** ZeRO, expert parallelism or compression: every rank writes its part of the state into one staging folder. */
    private Path stageShards(long step) {
        MeshGroup replicas = mesh.workers();
        CheckpointWriter writer = openStaging(step);
        MeshGroup experts = mesh.expertParallel();
        int modelParts = experts.size();
        if (job.zeroStage() == 3) {
            modelParts = writeModelUnitByUnit(writer);
        } else if (!experts.isLocal()) {
            // Each expert written by its holder: the first expert group's ranks write one part each.
            if (mesh.rank() < experts.size()) {
                writer.writeExpertPart(job.model(), model.parameters(), experts.rank(), experts.size());
            }
        } else if (mesh.rank() == 0) {
            writer.writeReplicaModel(job.model(), model.parameters());
        }
        // One file per optimizer part (ZeRO with expert parallelism has two, whose flat state shares its names).
        List<Map<String, StateSlice>> parts = optimizer.stateParts();
        for (int p = 0; p < parts.size(); p++) {
            OptimizerShards.write(writer, mesh.rank() * parts.size() + p, parts.get(p), model.parameters());
        }
        if (compressed != null) {
            CompressionState.write(writer, mesh.workers().rank(), compressed);
        }
        replicas.barrier();
        if (!experts.isLocal() && mesh.rank() == 0) {
            writer.writeModelFiles(job.model(), model.parameters().dataType(), modelParts);
        }
        return writer.stagingDir();
    }

    /**
     * The model one file per unit (embedding, each block, head), written while every rank takes part in that unit's
     * gather: no rank holds more than its shards and two units, also while checkpointing. Rank 0 writes every file
     * and its index; under expert parallelism the first expert group's ranks each write their experts of each unit
     * too, one file per unit and rank, and rank 0 indexes them all once every rank is done. Returns the parts.
     */
    private int writeModelUnitByUnit(CheckpointWriter writer) {
        ParameterSync params = sharding.parameters();
        MeshGroup experts = mesh.expertParallel();
        ExpertParallelUnits units = experts.isLocal() ? null
                : ExpertParallelUnits.of(model.parameters(), model.unitBounds());
        long[] bounds = model.unitBounds();
        int count = bounds.length - 1;
        int writers = experts.size(); // the first expert group: global ranks [0, ep)
        boolean writes = mesh.rank() < writers;
        List<CheckpointWriter.ModelShard> shards = new ArrayList<>();
        for (int u = 0; u < count; u++) {
            params.acquire(u, u + 1 < count ? u + 1 : -1); // the next unit's gather overlaps this one's write
            if (writes && units == null) {
                shards.add(writer.writeModelPart(job.model(), model.parameters(), bounds[u], bounds[u + 1], u,
                        count));
            } else if (writes) {
                int unit = u;
                boolean dense = mesh.rank() == 0;
                shards.add(writer.writeModelPart(job.model(), model.parameters(), 0, model.parameters().numel(),
                        name -> (dense || ExpertShard.isExpertTensor(name))
                                && units.holds(unit, model.parameters().tensor(name)),
                        u * writers + mesh.rank(), count * writers));
            }
            params.release(u);
        }
        if (writes && units == null) {
            writer.writeModelFiles(job.model(), model.parameters().dataType(), shards);
        }
        return count * writers;
    }
}
