package dev.tessera.worker.run;

import dev.tessera.optimizers.OptimizerSpec;
import dev.tessera.worker.job.DataSection;
import dev.tessera.worker.job.Dtype;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.train.TrainConfig;
import java.nio.file.Path;

/**
 * What a replica trains: the job's spec, the run directory its outputs go to, and the checkpoint it resumes from
 * (or null). The coordinator sends it to each worker in an {@link Assignment}. The other accessors are the views
 * of the spec that the model, the loop, the data and the optimizer are built from.
 */
public record WorkerJob(JobConfig spec, String runDir, String resume) {

    public static WorkerJob of(JobConfig spec, Path runDir, Path resumeOrNull) {
        return new WorkerJob(spec, runDir.toString(), resumeOrNull == null ? null : resumeOrNull.toString());
    }

    public ModelConfig model() {
        return spec.toModelConfig();
    }

    public TrainConfig train() {
        return spec.toTrainConfig();
    }

    public DataSection data() {
        return spec.data();
    }

    public boolean float64() {
        return spec.model().dtype() == Dtype.FLOAT64;
    }

    public OptimizerSpec optimizer() {
        return spec.optimizer().toSpec();
    }

    /** 0-3: how far ZeRO shards the model state over the data-parallel group (no effect alone). */
    public int zeroStage() {
        return spec.zero().stage();
    }
}
