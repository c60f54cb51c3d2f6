package dev.tessera.coordinator.launch;

import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.job.LauncherKind;
import java.util.Optional;
import java.util.function.Function;

/**
 * Launchers that come from the environment this JVM runs in rather than from the job: a Spark driver's session,
 * found when {@code launch.launcher: spark} is asked for. Found with {@link java.util.ServiceLoader}, so that the
 * coordinator names no Spark class and runs where Spark is absent.
 */
public interface EnvironmentLaunchers {

    /** The launcher kind this environment provides. */
    LauncherKind kind();

    /** One launcher per attempt of the job, or empty when this JVM does not run in such an environment. */
    Optional<Function<JobConfig, Launcher>> find();
}
