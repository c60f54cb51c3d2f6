package dev.tessera.comm;

/**
 * A collective or the connection failed: a deadline passed, a peer went away, a handshake was rejected. The
 * message names the operation, the group and the peer rank involved, so a log line is enough to act on.
 */
public class CommException extends RuntimeException {

    private final int peerRank;

    public CommException(String message, int peerRank) {
        super(message);
        this.peerRank = peerRank;
    }

    public CommException(String message, int peerRank, Throwable cause) {
        super(message, cause);
        this.peerRank = peerRank;
    }

    /** The global rank that did not answer or misbehaved, or -1 when no single peer is to blame. */
    public int peerRank() {
        return peerRank;
    }
}
