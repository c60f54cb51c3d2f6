package dev.tessera.coordinator;

import dev.tessera.comm.LocalProcessLauncher;
import dev.tessera.worker.cluster.MemberInfo;
import dev.tessera.worker.job.FaultSection;
import java.io.PrintStream;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Tells the three ways a worker can go quiet apart. Exited: its process is gone, seen at once. Stopped: its
 * process state on this host is T, seen within seconds ({@link StoppedWorkers}). Starved: alive and running
 * but slow; it gets a warning after {@code fault.suspect_after_s} of silence and is called dead only after
 * {@code fault.dead_after_s}, by Hazelcast (a proven member that stops heartbeating) or by the report clock.
 */
final class WorkerWatch {

    private final LocalWorkers workers;
    private final BlockingQueue<MemberInfo> lost;
    private final FaultSection fault;
    private final StoppedWorkers stopped;
    private final long[] pids;
    /** Where the warning goes: stdout, so that a job that fails later still has one line on stderr. */
    private final PrintStream out;
    private long lastReport = System.nanoTime();
    private boolean warned;

    WorkerWatch(LocalWorkers workers, BlockingQueue<MemberInfo> lost, FaultSection fault, PrintStream out) {
        this.out = out;
        this.workers = workers;
        this.lost = lost;
        this.fault = fault;
        this.stopped = new StoppedWorkers(workers.count());
        this.pids = new long[workers.count()];
        for (int r = 0; r < pids.length; r++) {
            pids[r] = workers.worker(r).process().pid();
        }
    }

    LocalWorkers workers() {
        return workers;
    }

    /** Fails naming the rank and host when a worker has exited, is stopped, or has left the cluster. */
    void check() {
        for (int r = 0; r < workers.count(); r++) {
            LocalProcessLauncher.Worker w = workers.worker(r);
            if (!w.process().isAlive() && w.process().exitValue() != 0) {
                throw new JobFailedException(ClusterTraining.describe(workers, r) + " exited with code "
                        + w.process().exitValue() + ClusterTraining.lastLine(w.output()));
            }
        }
        int frozen = stopped.poll(pids, System.nanoTime());
        if (frozen >= 0) {
            throw new JobFailedException(ClusterTraining.describe(workers, frozen) + " is stopped (SIGSTOP?): its"
                    + " process state has been T for " + StoppedWorkers.GRACE_NS / 1_000_000_000 + " s; stopping the"
                    + " job");
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
