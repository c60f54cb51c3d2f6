package dev.tessera.coordinator;

import dev.tessera.coordinator.run.RunDirectory;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.train.TrainingListener;

import java.io.PrintStream;
import java.nio.file.Path;

/**
 * What a {@link TrainAction} is given.
 *
 * @param job          the resolved, validated job; {@code out()} is the run directory
 * @param directory    where outputs go; config.yaml is already written there
 * @param resumeOrNull the verified checkpoint folder to continue from, or null for a fresh run
 * @param listener     the caller's listeners, called beside the run directory's own recorders
 * @param log          where the run's lines (data, model, progress, done) go
 */
public record TrainRequest(JobConfig job, RunDirectory directory, Path resumeOrNull, TrainingListener listener,
                           PrintStream log) {
}
