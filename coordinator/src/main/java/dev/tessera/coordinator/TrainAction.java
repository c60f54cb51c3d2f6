package dev.tessera.coordinator;

import dev.tessera.coordinator.run.RunDirectory;
import dev.tessera.worker.job.JobConfig;

import java.nio.file.Path;

/**
 * What {@code tessera train} does once the config is resolved and the run directory exists. It lives beside its
 * implementations (LocalTraining, ClusterTraining), so the CLI depends on the coordinator and not the reverse;
 * injected with {@link dev.tessera.coordinator.cli.TrainCommand#setAction}. Returns the exit code.
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
