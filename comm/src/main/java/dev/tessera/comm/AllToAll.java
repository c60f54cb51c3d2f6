package dev.tessera.comm;

/**
 * Every member sends block {@code j} of its input to member {@code j} and receives block {@code i} of its
 * output from member {@code i}, with per-member sizes. Sends go out to all peers at once, starting with the
 * next member up (so not everyone writes to member 0 first); a back-pressured peer does not hold the others.
 */
final class AllToAll extends Collective {

    private final Region input;
    private final long[] inputOffsets;
    private final Region output;
    private final long[] outputOffsets;
    private final int n;
    private final int me;
    private StreamSender[] senders;
    private RecvSlot[] receivers;

    /** Offsets have {@code N + 1} entries in bytes: block {@code j} is {@code [offsets[j], offsets[j+1])}. */
    AllToAll(ProcessGroup group, Region input, long[] inputOffsets, Region output, long[] outputOffsets) {
        super(group, "all-to-all");
        this.input = input;
        this.inputOffsets = inputOffsets;
        this.output = output;
        this.outputOffsets = outputOffsets;
        this.n = group.size();
        this.me = group.rank();
    }

    @Override
    void start() {
        senders = new StreamSender[n];
        receivers = new RecvSlot[n];
        for (int i = 1; i < n; i++) {
            int peer = mod(me + i, n);
            senders[i] = sender(peer, 0, block(input, inputOffsets, peer));
            Region into = block(output, outputOffsets, peer);
            receivers[peer] = slot(peer, 1, DType.BYTE, ReduceOp.SUM)
                    .expect(0, into.base(), into.address(), into.length(), false);
        }
        block(input, inputOffsets, me).copyTo(block(output, outputOffsets, me));
    }

    private static Region block(Region r, long[] offsets, int j) {
        return r.slice(offsets[j], offsets[j + 1] - offsets[j]);
    }

    @Override
    int progress() {
        int work = 0;
        for (int i = 1; i < n; i++) {
            if (!senders[i].done()) {
                work += senders[i].push(inputOffsets[mod(me + i, n) + 1] - inputOffsets[mod(me + i, n)], this);
            }
        }
        return work;
    }

    @Override
    boolean done() {
        for (int i = 1; i < n; i++) {
            if (!senders[i].done() || !receivers[mod(me + i, n)].complete(0)) {
                return false;
            }
        }
        return true;
    }

    @Override
    int blockingPeer() {
        for (int i = 1; i < n; i++) {
            RecvSlot r = receivers[mod(me + i, n)];
            if (!r.complete(0)) {
                return r.srcRank;
            }
        }
        for (int i = 1; i < n; i++) {
            if (!senders[i].done()) {
                return senders[i].peerRank();
            }
        }
        return -1;
    }

    @Override
    String waitingFor() {
        for (int i = 1; i < n; i++) {
            RecvSlot r = receivers[mod(me + i, n)];
            if (!r.complete(0)) {
                return stepState(r, 0);
            }
        }
        for (int i = 1; i < n; i++) {
            if (!senders[i].done()) {
                return "rank " + senders[i].peerRank() + " to take its block (" + senders[i].progress() + ")";
            }
        }
        return "nothing";
    }
}
