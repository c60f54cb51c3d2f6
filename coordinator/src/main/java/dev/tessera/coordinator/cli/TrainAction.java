package dev.tessera.coordinator.cli;

import dev.tessera.coordinator.run.RunDirectory;
import dev.tessera.worker.job.JobConfig;

import java.nio.file.Path;

/**
 * What {@code tessera train} does once the config is resolved and the run directory exists. Injected with
 * {@link TrainCommand#setAction} so the CLI does not depend on how training is launched. Returns the exit code.
 */
@FunctionalInterface
public interface TrainAction {

    /**
     * @param config       the resolved, validated job; {@code out()} is the run directory
     * @param directory    where outputs go; config.yaml is already written there
     * @param resumeOrNull the verified checkpoint folder that --resume resolved to (a run directory's newest
     *                     complete checkpoint, or the checkpoint given), or null for a fresh run
     */
    int run(JobConfig config, RunDirectory directory, Path resumeOrNull) throws Exception;

}
