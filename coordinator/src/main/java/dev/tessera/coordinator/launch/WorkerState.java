package dev.tessera.coordinator.launch;

/**
 * What a {@link Launcher} can see of one worker's process. A launcher that cannot see processes (a remote
 * scheduler) answers {@link Status#UNSEEN}; the supervisor then relies on cluster membership alone.
 *
 * @param exitCode  the exit code, when {@link Status#EXITED}
 * @param lastWords the last line the worker said before it failed (": ..."), or "" when there is none to show
 */
public record WorkerState(Status status, int exitCode, String lastWords) {

    /** Whether the process runs, is stopped (SIGSTOP, a debugger), has exited, or cannot be seen. */
    public enum Status { RUNNING, STOPPED, EXITED, UNSEEN }

    public static final WorkerState RUNNING = new WorkerState(Status.RUNNING, 0, "");
    public static final WorkerState STOPPED = new WorkerState(Status.STOPPED, 0, "");
    public static final WorkerState UNSEEN = new WorkerState(Status.UNSEEN, 0, "");

    public static WorkerState exited(int code, String lastWords) {
        return new WorkerState(Status.EXITED, code, lastWords);
    }

    /** Exited with a code other than 0: it failed (a worker exits 0 only after it reported its end). */
    public boolean failed() {
        return status == Status.EXITED && exitCode != 0;
    }
}
