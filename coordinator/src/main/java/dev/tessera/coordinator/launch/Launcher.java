package dev.tessera.coordinator.launch;

import dev.tessera.worker.run.WorkerArgs;
import java.util.Map;

/**
 * How a job's worker processes start, and what can be seen of them: child processes of the coordinator today
 * ({@link LocalLauncher}); hosts of a cluster YAML over SSH and Spark barrier tasks later. The supervisor talks to
 * workers only through this interface and the job's Hazelcast cluster, so it does not care which launcher started
 * them. One launcher serves one attempt of a job: {@link #close()} ends every worker it started.
 */
public interface Launcher extends AutoCloseable {

    /** Where the coordinator runs for these workers: the address they reach it at, and its host. */
    Placement coordinator();

    /** Where rank {@code rank} runs once started: its host and the address it binds. */
    Placement placement(int rank);

    /**
     * Starts the worker of rank {@code args.rank()} with these arguments and this environment (which carries the
     * job token: never put it on a command line). Returns once the process is on its way.
     */
    void start(WorkerArgs args, Map<String, String> env);

    /**
     * What this launcher can see of rank {@code rank}'s process now; {@link WorkerState#UNSEEN} where it cannot
     * see processes. Called a few times a second.
     */
    WorkerState state(int rank);

    /** Names rank {@code rank}'s process in messages: "worker rank 1 (pid 4242 on host-a)". */
    String describe(int rank);

    /** Waits up to {@code timeoutMs} for every worker to exit on its own (after they reported their end). */
    void awaitExit(long timeoutMs);

    /** Ends every worker this launcher started, forcibly after a grace period; none outlives it. Idempotent. */
    @Override
    void close();
}
