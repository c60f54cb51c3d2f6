package dev.tessera.comm;

/**
 * {@code send} completes when every frame is in the publication (the buffer may then be reused); the
 * receiver need not have posted yet. {@code recv} expects exactly its buffer's length. Each ordered pair of
 * members numbers its messages, so sends and receives match in order, independently of the group's
 * collectives.
 */
final class PointToPoint extends Collective {

    private final Region buffer;
    private final int peer;
    private final boolean sending;
    private StreamSender sender;
    private RecvSlot receiver;

    PointToPoint(ProcessGroup group, Region buffer, int peer, boolean sending, int seq) {
        super(group, sending ? "send" : "recv", DataFrame.KIND_POINT_TO_POINT, seq);
        this.buffer = buffer;
        this.peer = peer;
        this.sending = sending;
    }

    @Override
    void start() {
        if (sending) {
            sender = sender(peer, 0, buffer);
        } else {
            receiver = slot(peer, 1, DType.BYTE, ReduceOp.SUM)
                    .expect(0, buffer.base(), buffer.address(), buffer.length(), false);
        }
    }

    @Override
    int progress() {
        return sending && !sender.done() ? sender.push(buffer.length(), this) : 0;
    }

    @Override
    boolean done() {
        return sending ? sender.done() : receiver.complete(0);
    }

    @Override
    int blockingPeer() {
        return group.globalRank(peer);
    }

    @Override
    String waitingFor() {
        return sending ? "rank " + group.globalRank(peer) + " to take the message (" + sender.progress() + ")"
                : stepState(receiver, 0);
    }
}
