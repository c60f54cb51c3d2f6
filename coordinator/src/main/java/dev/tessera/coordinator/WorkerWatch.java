package dev.tessera.coordinator;

import dev.tessera.coordinator.launch.Launcher;
import dev.tessera.coordinator.launch.WorkerState;
import dev.tessera.worker.cluster.MemberInfo;
import dev.tessera.worker.job.FaultSection;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Tells the three ways a worker can go quiet apart. Exited: its process is gone, seen at once where the launcher
 * sees processes. Stopped: its process state is T, seen within seconds ({@link StoppedWorkers}). Starved: alive
 * and running but slow; it gets a warning after {@code fault.suspect_after_s} of silence and is called dead only
 * after {@code fault.dead_after_s}, by Hazelcast (a proven member that stops heartbeating) or by the report clock.
 * Membership works whatever the launcher can see: a worker whose process the launcher cannot see is still caught
 * when it leaves the cluster.
 */
final class WorkerWatch {

    /** How often the launcher is asked about the processes: a worker's exit is noticed within this. */
    private static final long STATE_POLL_NS = 50_000_000L;

    private final Launcher launcher;
    private final int world;
    private final BlockingQueue<MemberInfo> lost;
    private final FaultSection fault;
    private final StoppedWorkers stopped;
    private final WorkerState[] states;
    /** Where the warning goes: stdout, so that a job that fails later still has one line on stderr. */
    private final PrintStream out;
    private long lastStatePoll;
    private long lastReport = System.nanoTime();
    private boolean warned;

    WorkerWatch(Launcher launcher, int world, BlockingQueue<MemberInfo> lost, FaultSection fault, PrintStream out) {
        this.launcher = launcher;
        this.world = world;
        this.out = out;
        this.lost = lost;
        this.fault = fault;
        this.stopped = new StoppedWorkers(world);
        this.states = new WorkerState[world];
        Arrays.fill(states, WorkerState.UNSEEN);
    }

    Launcher launcher() {
        return launcher;
    }

    /** Fails naming the rank and host when a worker has exited, is stopped, or has left the cluster. */
    void check() {
        long now = System.nanoTime();
        if (lastStatePoll == 0 || now - lastStatePoll >= STATE_POLL_NS) {
            lastStatePoll = now;
            for (int r = 0; r < world; r++) {
                states[r] = launcher.state(r);
                if (states[r].failed()) {
                    throw new JobFailedException(launcher.describe(r) + " exited with code " + states[r].exitCode()
                            + states[r].lastWords());
                }
            }
        }
        int frozen = stopped.poll(r -> states[r].status() == WorkerState.Status.STOPPED, now);
        if (frozen >= 0) {
            throw new JobFailedException(launcher.describe(frozen) + " is stopped (SIGSTOP?): its process state has"
                    + " been T for " + StoppedWorkers.GRACE_NS / 1_000_000_000 + " s; stopping the job");
        }
        MemberInfo gone = lost.poll();
        if (gone != null) {
            throw new JobFailedException(gone.describe() + " left the cluster: no heartbeat for "
                    + fault.deadAfterS() + " s (fault.dead_after_s) or it shut down; stopping the job");
        }
    }

    void reported() {
        lastReport = System.nanoTime();
        warned = false;
    }

    /** Warns once after {@code suspect_after_s} without a report, fails after {@code dead_after_s}. */
    void checkSilence() {
        long silentS = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - lastReport);
        if (silentS >= fault.deadAfterS()) {
            throw new JobFailedException("no report from the workers for " + silentS + " s (fault.dead_after_s = "
                    + fault.deadAfterS() + "); rank 0 has been silent and no worker is stopped or gone; the job is"
                    + " stuck");
        }
        if (!warned && silentS >= fault.suspectAfterS()) {
            warned = true;
            out.println("warning: rank 0 has been silent for " + silentS + " s (fault.suspect_after_s"
                    + " = " + fault.suspectAfterS() + "); its workers are alive and running, so the job waits up to"
                    + " fault.dead_after_s = " + fault.deadAfterS() + " s");
        }
    }
}
