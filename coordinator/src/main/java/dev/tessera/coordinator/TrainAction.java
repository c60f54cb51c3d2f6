package dev.tessera.coordinator;

import dev.tessera.coordinator.run.RunSummary;

/**
 * How a resolved job trains once its run directory exists: in this process ({@link LocalTraining}), on worker
 * processes ({@link ClusterTraining}), or, through {@link Trainer.Builder#trainWith}, anything else that keeps
 * the contract: write the run's outputs into {@code request.directory()}, call {@code request.listener()} as the
 * run goes, and return its summary or throw.
 */
@FunctionalInterface
public interface TrainAction {

    /** A mesh of one rank trains in this process, larger ones on worker processes of this host. */
    TrainAction DEFAULT = request -> request.job().mesh().world() == 1
            ? new LocalTraining().run(request)
            : new ClusterTraining().run(request);

    RunSummary run(TrainRequest request) throws Exception;
}
