package dev.tessera.comm;

/**
 * Direct exchange: this member sends {@code sendBlocks[p]} to member {@code p} and receives
 * {@code recvBlocks[p]} from it, all peers at once, in one hop (null: nothing with that peer). All-to-all
 * uses it with one block per peer; small all-gathers and broadcasts use it because one hop beats the
 * {@code N-1} of a ring or chain when the payload is too small for bandwidth to matter. Sends start with the
 * next member up (so not everyone writes to member 0 first), and a back-pressured peer does not hold the
 * others.
 */
final class AllToAll extends Collective {

    private final Region[] sendBlocks;
    private final Region[] recvBlocks;
    private final int n;
    private final int me;
    private StreamSender[] senders;
    private RecvSlot[] receivers;

    AllToAll(ProcessGroup group, String operation, Region[] sendBlocks, Region[] recvBlocks) {
        super(group, operation);
        this.sendBlocks = sendBlocks;
        this.recvBlocks = recvBlocks;
        this.n = group.size();
        this.me = group.rank();
    }

    /** Block {@code j} of a buffer cut at {@code offsets} ({@code N + 1} byte offsets). */
    static Region[] blocks(Region r, long[] offsets) {
        Region[] blocks = new Region[offsets.length - 1];
        for (int j = 0; j < blocks.length; j++) {
            blocks[j] = r.slice(offsets[j], offsets[j + 1] - offsets[j]);
        }
        return blocks;
    }

    @Override
    void start() {
        senders = new StreamSender[n];
        receivers = new RecvSlot[n];
        for (int i = 1; i < n; i++) {
            int peer = mod(me + i, n);
            if (sendBlocks[peer] != null) {
                senders[i] = sender(peer, 0, sendBlocks[peer]);
            }
            Region into = recvBlocks[peer];
            if (into != null) {
                receivers[peer] = slot(peer, 1, DType.BYTE, ReduceOp.SUM)
                        .expect(0, into.base(), into.address(), into.length(), false);
            }
        }
        if (sendBlocks[me] != null && recvBlocks[me] != null) {
            sendBlocks[me].copyTo(recvBlocks[me]);
        }
    }

    @Override
    int progress() {
        int work = 0;
        for (int i = 1; i < n; i++) {
            StreamSender s = senders[i];
            if (s != null && !s.done()) {
                work += s.push(sendBlocks[mod(me + i, n)].length(), this);
            }
        }
        return work;
    }

    @Override
    boolean done() {
        for (int i = 1; i < n; i++) {
            RecvSlot r = receivers[mod(me + i, n)];
            if ((senders[i] != null && !senders[i].done()) || (r != null && !r.complete(0))) {
                return false;
            }
        }
        return true;
    }

    @Override
    int blockingPeer() {
        for (int i = 1; i < n; i++) {
            RecvSlot r = receivers[mod(me + i, n)];
            if (r != null && !r.complete(0)) {
                return r.srcRank;
            }
        }
        for (int i = 1; i < n; i++) {
            if (senders[i] != null && !senders[i].done()) {
                return senders[i].peerRank();
            }
        }
        return -1;
    }

    @Override
    String waitingFor() {
        for (int i = 1; i < n; i++) {
            RecvSlot r = receivers[mod(me + i, n)];
            if (r != null && !r.complete(0)) {
                return stepState(r, 0);
            }
        }
        for (int i = 1; i < n; i++) {
            if (senders[i] != null && !senders[i].done()) {
                return "rank " + senders[i].peerRank() + " to take its block (" + senders[i].progress() + ")";
            }
        }
        return "nothing";
    }
}
