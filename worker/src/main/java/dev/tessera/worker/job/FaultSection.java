package dev.tessera.worker.job;

/**
 * {@code fault:} how long a live worker may be silent. A worker that exits is seen at once and a stopped one
 * (SIGSTOP) within seconds, from its process state; a worker that runs but is starved (a loaded host, several
 * JVMs starting and collecting garbage at once) is warned about after {@code suspect_after_s} and called dead
 * after {@code dead_after_s}.
 */
public record FaultSection(int suspectAfterS, int deadAfterS) {

    public static FaultSection defaults() {
        return new FaultSection(60, 300);
    }
}
