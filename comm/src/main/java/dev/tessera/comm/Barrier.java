package dev.tessera.comm;

/**
 * Dissemination barrier: in round {@code k} a member sends an empty frame to {@code me + 2^k} and waits for
 * one from {@code me - 2^k}; after {@code ceil(log2 N)} rounds every member has heard, transitively, from all.
 */
final class Barrier extends Collective {

    private static final Region EMPTY = new Region(null, 0, 0);
    private final int n;
    private final int me;
    private final int rounds;
    private RecvSlot[] fromBehind;
    private StreamSender sending;
    private int round;

    Barrier(ProcessGroup group) {
        super(group, "barrier");
        this.n = group.size();
        this.me = group.rank();
        this.rounds = n == 1 ? 0 : 32 - Integer.numberOfLeadingZeros(n - 1);
    }

    @Override
    void start() {
        fromBehind = new RecvSlot[rounds];
        for (int k = 0; k < rounds; k++) {
            fromBehind[k] = slot(mod(me - (1 << k), n), rounds, DType.BYTE, ReduceOp.SUM)
                    .expect(k, null, 0, 0, false);
        }
    }

    @Override
    int progress() {
        int work = 0;
        while (round < rounds) {
            if (sending == null) {
                sending = sender(mod(me + (1 << round), n), round, EMPTY);
            }
            work += sending.push(0, this);
            if (!sending.done() || !fromBehind[round].complete(round)) {
                return work;
            }
            sending = null;
            round++;
        }
        return work;
    }

    @Override
    boolean done() {
        return round == rounds;
    }

    @Override
    int blockingPeer() {
        return round < rounds ? fromBehind[round].srcRank : -1;
    }

    @Override
    String waitingFor() {
        return round < rounds ? stepState(fromBehind[round], round) : "nothing";
    }
}
