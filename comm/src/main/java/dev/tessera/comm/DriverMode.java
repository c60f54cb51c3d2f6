package dev.tessera.comm;

/**
 * Where the Aeron media driver runs. {@link #SHARED_PER_HOST}: one embedded driver per host per job, owned by
 * whoever launches that host's workers; processes on one host then talk over IPC (shared memory, no copy by
 * the driver). {@link #PER_PROCESS}: every worker embeds its own driver, so even same-host peers need UDP.
 */
public enum DriverMode {
    SHARED_PER_HOST, PER_PROCESS
}
