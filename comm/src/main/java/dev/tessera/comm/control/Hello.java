package dev.tessera.comm.control;

/**
 * The first message on every control connection. It binds the sender's Aeron session ids (data and control
 * stream) to its rank, once the token digest has been checked; frames from any other session are dropped.
 */
public final class Hello implements ControlMessage {
    public String jobId;
    public int rank;
    public byte[] tokenDigest;
    public int dataSessionId;
    public int controlSessionId;

    public Hello() {
    }

    public Hello(String jobId, int rank, byte[] tokenDigest, int dataSessionId, int controlSessionId) {
        this.jobId = jobId;
        this.rank = rank;
        this.tokenDigest = tokenDigest;
        this.dataSessionId = dataSessionId;
        this.controlSessionId = controlSessionId;
    }
}
