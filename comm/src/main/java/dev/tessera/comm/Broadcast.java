package dev.tessera.comm;

/**
 * Pipelined chain from the root: each member receives from the one before it (in root-relative order) and
 * forwards each frame to the next as soon as it has landed, so a large broadcast costs about one transfer.
 */
final class Broadcast extends Collective {

    private final Region buffer;
    private final int root;
    private final int n;
    private final int me;
    private RecvSlot fromPrevious;
    private StreamSender toNext;

    Broadcast(ProcessGroup group, Region buffer, int root) {
        super(group, "broadcast");
        this.buffer = buffer;
        this.root = root;
        this.n = group.size();
        this.me = group.rank();
    }

    @Override
    void start() {
        int position = mod(me - root, n);
        if (position > 0) {
            fromPrevious = slot(mod(me - 1, n), 1, DType.BYTE, ReduceOp.SUM)
                    .expect(0, buffer.base(), buffer.address(), buffer.length(), false);
        }
        if (position < n - 1) {
            toNext = sender(mod(me + 1, n), 0, buffer);
        }
    }

    @Override
    int progress() {
        if (toNext == null || toNext.done()) {
            return 0;
        }
        return toNext.push(fromPrevious == null ? buffer.length() : fromPrevious.received(0), this);
    }

    @Override
    boolean done() {
        return (toNext == null || toNext.done()) && (fromPrevious == null || fromPrevious.complete(0));
    }

    @Override
    int blockingPeer() {
        if (fromPrevious != null && !fromPrevious.complete(0)) {
            return fromPrevious.srcRank;
        }
        return toNext != null ? toNext.peerRank() : -1;
    }

    @Override
    String waitingFor() {
        if (fromPrevious != null && !fromPrevious.complete(0)) {
            return stepState(fromPrevious, 0);
        }
        return toNext != null ? "rank " + toNext.peerRank() + " to take the data (" + toNext.progress() + ")"
                : "nothing";
    }
}
