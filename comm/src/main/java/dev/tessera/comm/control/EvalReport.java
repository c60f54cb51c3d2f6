package dev.tessera.comm.control;

/** Worker to coordinator: the validation loss over the whole (global) validation batches at {@code step}. */
public final class EvalReport implements ControlMessage {
    public int rank;
    public long step;
    public double loss;

    public EvalReport() {
    }

    public EvalReport(int rank, long step, double loss) {
        this.rank = rank;
        this.step = step;
        this.loss = loss;
    }
}
