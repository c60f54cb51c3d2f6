package dev.tessera.comm;

import java.util.ArrayList;
import java.util.List;

/**
 * One operation on a group as a non-blocking state machine: {@link #start()} posts its receives,
 * {@link #progress()} sends whatever is ready and does local work, and the runner in {@link ProcessGroup} spins
 * on it (polling the subscriptions in between) until {@link #done()}, the deadline, or a failure.
 */
abstract class Collective {

    final ProcessGroup group;
    final Communicator comm;
    final String operation;
    final int seq;
    final int kind;
    final List<RecvSlot> slots = new ArrayList<>(4);

    Collective(ProcessGroup group, String operation) {
        this(group, operation, DataFrame.KIND_COLLECTIVE, group.nextSeq());
    }

    Collective(ProcessGroup group, String operation, int kind, int seq) {
        this.group = group;
        this.comm = group.communicator();
        this.operation = operation;
        this.kind = kind;
        this.seq = seq;
    }

    /** Creates the receive slot for frames from {@code srcGroupRank}. */
    RecvSlot slot(int srcGroupRank, int steps, DType dtype, ReduceOp op) {
        RecvSlot s = new RecvSlot(group.id(), kind, seq, group.globalRank(srcGroupRank), steps, dtype, op);
        slots.add(s);
        return s;
    }

    StreamSender sender(int dstGroupRank, int step, Region from) {
        return new StreamSender(comm, group.globalRank(dstGroupRank), group.id(), kind, seq, step, from.base(),
                from.address(), from.length());
    }

    /** Builds the slots and senders; called on the thread that runs the operation. */
    abstract void start();

    /** Sends what is ready and does local work; returns a count of work done (0: nothing happened). */
    abstract int progress();

    abstract boolean done();

    /** Local work after the last byte arrived (e.g. the division of an average). */
    void finish() {
    }

    /** The global rank this operation is waiting for now, or -1. */
    abstract int blockingPeer();

    /** What it is waiting for, for the error message. */
    abstract String waitingFor();

    static String stepState(RecvSlot slot, int step) {
        long got = slot.received(step);
        return "step " + step + " from rank " + slot.srcRank + " (" + Math.max(0, got) + " of "
                + slot.expected(step) + " bytes received)";
    }

    static int mod(int a, int n) {
        int m = a % n;
        return m < 0 ? m + n : m;
    }

    @Override
    public String toString() {
        return operation + " on group '" + group.name() + "' (seq " + seq + ", rank " + comm.rank() + ")";
    }
}
