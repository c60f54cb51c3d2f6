package dev.tessera.comm.control;

/**
 * Worker to coordinator at the end: {@code error} is null on success, else one line saying what failed
 * ({@code userError} when it is the user's to fix, as a bad data file).
 */
public final class WorkerFinished implements ControlMessage {
    public int rank;
    public String error;
    public boolean userError;
    /** The rank that stopped answering when the failure was a wait on a peer, else -1. */
    public int suspectRank = -1;
    public long steps;
    public long tokens;
    public double finalLoss;
    public double evalLoss;
    public double tokensPerSecond;
    public double trainSeconds;
    public double exposedCommFraction;
    public long stateBytes;
    /**
     * Peak physical memory of this rank's flat parameter and gradient buffers over its first steps
     * ({@code MemoryProbe}); 0 when not measured.
     */
    public long paramBytes;
    public long gradBytes;
    /** This worker process's peak resident memory (VmHWM) when it finished; -1 when not known. */
    public long peakRssBytes = -1;

    public WorkerFinished() {
    }

    public static WorkerFinished failed(int rank, String error, boolean userError, int suspectRank) {
        WorkerFinished f = new WorkerFinished();
        f.rank = rank;
        f.error = error;
        f.userError = userError;
        f.suspectRank = suspectRank;
        return f;
    }
}
