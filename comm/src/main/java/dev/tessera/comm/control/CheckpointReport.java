package dev.tessera.comm.control;

/** Worker to coordinator: a complete checkpoint of {@code step} is at {@code path}. */
public final class CheckpointReport implements ControlMessage {
    public int rank;
    public long step;
    public String path;

    public CheckpointReport() {
    }

    public CheckpointReport(int rank, long step, String path) {
        this.rank = rank;
        this.step = step;
        this.path = path;
    }
}
