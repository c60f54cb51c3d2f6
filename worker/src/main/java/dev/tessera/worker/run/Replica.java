package dev.tessera.worker.run;

import dev.tessera.comm.UserInputException;
import dev.tessera.optimizers.Optimizer;
import dev.tessera.worker.checkpoint.Checkpoint;
import dev.tessera.worker.checkpoint.CheckpointWriter;
import dev.tessera.worker.checkpoint.OptimizerShards;
import dev.tessera.worker.data.TokenSource;
import dev.tessera.worker.model.Transformer;
import dev.tessera.worker.parallel.Mesh;
import dev.tessera.worker.parallel.ParallelContext;
import dev.tessera.worker.parallel.ParameterSync;
import dev.tessera.worker.parallel.Sharding;
import dev.tessera.worker.train.Checkpointer;
import dev.tessera.worker.train.TrainingListener;
import dev.tessera.worker.train.TrainingLoop;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.ThreadLocalRandom;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * One model replica ready to train: its data, its model for this rank's slice of the batch, its optimizer,
 * and, when resuming, the parameters and optimizer state of the checkpoint. The same code serves a single
 * process and every rank of a cluster; only the {@link ParallelContext} differs.
 */
public final class Replica {

    private final WorkerJob job;
    private final ParallelContext parallel;
    private final TokenSource data;
    private final Transformer model;
    private final Sharding sharding;
    private final Optimizer optimizer;
    private final long completedSteps;

    private Replica(WorkerJob job, ParallelContext parallel, TokenSource data, Transformer model, Sharding sharding,
                    Optimizer optimizer, long completedSteps) {
        this.job = job;
        this.parallel = parallel;
        this.data = data;
        this.model = model;
        this.sharding = sharding;
        this.optimizer = optimizer;
        this.completedSteps = completedSteps;
    }

    public static Replica build(WorkerJob job, ParallelContext parallel) {
        int seq = job.train().seqLen();
        TokenSource data = job.data().open(seq);
        Mesh.Range slice = parallel.batchSlice(job.train().batchSize());
        Transformer model = new Transformer(job.model(), job.float64() ? DataType.DOUBLE : DataType.FLOAT,
                slice.size(), seq, parallel.reducer(), parallel.gradientMemory());
        model.initialize(job.train().seed());
        Sharding sharding = parallel.sharding().create(model.parameters(), model.unitBounds());
        model.useParameterSync(sharding.parameters());
        Optimizer optimizer = job.optimizer().create(model.parameters().params(), model.parameters().grads(),
                model.parameters().spans(), sharding.shard(), sharding.optimizerReducer());
        long completed = 0;
        if (job.resume() != null) {
            Checkpoint checkpoint = Checkpoint.open(Path.of(job.resume()));
            if (!checkpoint.modelConfig().equals(job.model())) {
                throw new UserInputException("checkpoint " + checkpoint.dir() + " holds a model of shape "
                        + checkpoint.modelConfig() + ", but the job asks for " + job.model()
                        + "; resume with the checkpoint's model settings");
            }
            checkpoint.loadParameters(model.parameters());
            OptimizerShards.load(checkpoint, optimizer.state(), model.parameters());
            completed = checkpoint.step();
        }
        return new Replica(job, parallel, data, model, sharding, optimizer, completed);
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
        if (parallel.isSingle()) {
            checkpointer = step -> CheckpointWriter.write(runDir, step, job.model(), model.parameters(),
                    optimizer.state(), TrainerState.of(step, parallel.mesh(), job.spec().toMap()));
        } else if (job.zeroStage() == 0) {
            checkpointer = parallel.rank() == 0 ? step -> CheckpointWriter.stageReplica(runDir, step, job.model(),
                    model.parameters(), optimizer.state()) : null;
        } else {
            checkpointer = this::stageShards;
        }
        TrainingLoop loop = new TrainingLoop(model, data, job.train(), optimizer, listener, checkpointer, parallel,
                sharding);
        return loop.run(completedSteps);
    }

    /**
     * ZeRO: rank 0 makes the staging folder and its random name reaches every rank through one sum (everyone
     * else adds 0), which is also the barrier before anyone writes; a second sum is the barrier after.
     */
    private Path stageShards(long step) {
        double[] name = {parallel.rank() == 0 ? ThreadLocalRandom.current().nextLong(1L << 52) : 0};
        CheckpointWriter writer = parallel.rank() == 0
                ? CheckpointWriter.stage(Path.of(job.runDir()), step, Long.toHexString((long) name[0])) : null;
        parallel.reducer().sumInPlace(name);
        if (writer == null) {
            writer = CheckpointWriter.attach(CheckpointWriter.stagingDir(Path.of(job.runDir()), step,
                    Long.toHexString((long) name[0])), step);
        }
        ParameterSync params = sharding.parameters();
        int units = model.unitBounds().length - 1;
        for (int u = 0; u < units; u++) {
            params.acquire(u, -1); // ZeRO-3: the whole model, gathered once for the file
        }
        if (parallel.rank() == 0) {
            writer.writeReplicaModel(job.model(), model.parameters());
        }
        for (int u = 0; u < units; u++) {
            params.release(u);
        }
        OptimizerShards.write(writer, parallel.rank(), optimizer.state(), model.parameters());
        parallel.reducer().sumInPlace(new double[1]);
        return writer.stagingDir();
    }
}
