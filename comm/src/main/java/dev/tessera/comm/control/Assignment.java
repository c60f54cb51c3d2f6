package dev.tessera.comm.control;

/**
 * Coordinator to worker: what this rank does in the job. {@code jobJson} is the worker's job description
 * (model, training, data, output) as JSON; the mesh coordinates follow from {@code rank} and the degrees.
 */
public final class Assignment implements ControlMessage {
    public int rank;
    public int dp;
    public int sp;
    public int ep;
    public String jobJson;

    public Assignment() {
    }

    public Assignment(int rank, int dp, int sp, int ep, String jobJson) {
        this.rank = rank;
        this.dp = dp;
        this.sp = sp;
        this.ep = ep;
        this.jobJson = jobJson;
    }
}
