package dev.tessera.comm.control;

/**
 * Sent to a group's members when a collective fails on one rank, so they stop waiting for it at once and
 * report the root cause instead of timing out on a peer that only waited too.
 */
public final class Abort implements ControlMessage {
    public int groupId;
    public int rank;
    public String reason;

    public Abort() {
    }

    public Abort(int groupId, int rank, String reason) {
        this.groupId = groupId;
        this.rank = rank;
        this.reason = reason;
    }
}
