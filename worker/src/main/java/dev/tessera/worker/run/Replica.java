package dev.tessera.worker.run;

import dev.tessera.comm.UserInputException;
import dev.tessera.optimizers.Optimizer;
import dev.tessera.worker.checkpoint.Checkpoint;
import dev.tessera.worker.checkpoint.CheckpointWriter;
import dev.tessera.worker.data.TokenSource;
import dev.tessera.worker.model.Transformer;
import dev.tessera.worker.parallel.Mesh;
import dev.tessera.worker.parallel.ParallelContext;
import dev.tessera.worker.train.Checkpointer;
import dev.tessera.worker.train.ParamSpans;
import dev.tessera.worker.train.TrainingListener;
import dev.tessera.worker.train.TrainingLoop;
import java.io.IOException;
import java.nio.file.Path;
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
    private final Optimizer optimizer;
    private final long completedSteps;

    private Replica(WorkerJob job, ParallelContext parallel, TokenSource data, Transformer model,
                    Optimizer optimizer, long completedSteps) {
        this.job = job;
        this.parallel = parallel;
        this.data = data;
        this.model = model;
        this.optimizer = optimizer;
        this.completedSteps = completedSteps;
    }

    public static Replica build(WorkerJob job, ParallelContext parallel) {
        int seq = job.train().seqLen();
        TokenSource data = job.data().open(seq);
        Mesh.Range slice = parallel.batchSlice(job.train().batchSize());
        Transformer model = new Transformer(job.model(), job.float64() ? DataType.DOUBLE : DataType.FLOAT,
                slice.size(), seq, parallel.reducer());
        model.initialize(job.train().seed());
        Optimizer optimizer = job.optimizer().create(model.parameters().params(), model.parameters().grads(),
                ParamSpans.of(model.parameters()));
        long completed = 0;
        if (job.resume() != null) {
            Checkpoint checkpoint = Checkpoint.open(Path.of(job.resume()));
            if (!checkpoint.modelConfig().equals(job.model())) {
                throw new UserInputException("checkpoint " + checkpoint.dir() + " holds a model of shape "
                        + checkpoint.modelConfig() + ", but the job asks for " + job.model()
                        + "; resume with the checkpoint's model settings");
            }
            checkpoint.loadParameters(model.parameters());
            checkpoint.loadOptimizerState(0, optimizer.state());
            completed = checkpoint.step();
        }
        return new Replica(job, parallel, data, model, optimizer, completed);
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
     * Trains to the job's last step. Rank 0 writes the checkpoints: without ZeRO every rank holds the same
     * parameters and optimizer state, so one copy is the whole of it. Alone it completes them; in a cluster it
     * stages them and the coordinator completes them (trainer state, then the manifest, written last).
     */
    public TrainingLoop.Result train(TrainingListener listener) throws IOException {
        Path runDir = Path.of(job.runDir());
        Checkpointer checkpointer = parallel.isSingle()
                ? step -> CheckpointWriter.write(runDir, step, job.model(), model.parameters(), optimizer.state(),
                        TrainerState.of(step, parallel.mesh(), job.job()))
                : step -> CheckpointWriter.stageReplica(runDir, step, job.model(), model.parameters(),
                        optimizer.state());
        TrainingLoop loop = new TrainingLoop(model, data, job.train(), optimizer, listener,
                parallel.rank() == 0 ? checkpointer : null, parallel);
        return loop.run(completedSteps);
    }
}
