package dev.tessera.comm;

/**
 * All-reduce for small payloads in {@code log2 N} exchanges instead of the ring's {@code 2(N-1)} steps. With
 * {@code p} the largest power of two not above {@code N}, the {@code N - p} extra members first hand their data
 * to member {@code me - p} (step 0) and get the result back at the end (last step); the first {@code p} members
 * exchange whole buffers with partner {@code me xor 2^k} in round {@code k}. Each exchange lands in scratch and
 * is combined after this member's own send is out (the buffer being sent must not change under it). Both
 * partners combine the same two values and IEEE sum and max commute, so all members end with the same bits.
 */
class RecursiveDoublingAllReduce extends Collective {

    private final Region buffer;
    private final DType dtype;
    private final ReduceOp op;
    private final int n;
    private final int me;
    private final int pow2;
    private final int rounds;
    private final int lastStep;
    private Region scratch;
    private RecvSlot[] slotByPeer;
    private int phase; // 0 pre-step, 1..rounds exchanges, rounds+1 post-step, rounds+2 done
    private StreamSender sending;
    private int waitingPeer = -1;
    private int waitingStep;

    RecursiveDoublingAllReduce(ProcessGroup group, String operation, Region buffer, DType dtype, ReduceOp op) {
        super(group, operation);
        this.buffer = buffer;
        this.dtype = dtype;
        this.op = op;
        this.n = group.size();
        this.me = group.rank();
        this.pow2 = Integer.highestOneBit(n);
        this.rounds = Integer.numberOfTrailingZeros(pow2);
        this.lastStep = rounds + 1;
    }

    @Override
    void start() {
        long bytes = buffer.length();
        scratch = ScratchBuffers.get(bytes * (rounds + 1));
        slotByPeer = new RecvSlot[n];
        ReduceOp combine = op == ReduceOp.AVG ? ReduceOp.SUM : op;
        if (me >= pow2) {
            slotOf(me - pow2, combine).expect(lastStep, buffer.base(), buffer.address(), bytes, false);
            return;
        }
        if (me + pow2 < n) {
            slotOf(me + pow2, combine).expect(0, scratch.base(), scratch.address(), bytes, false);
        }
        for (int k = 0; k < rounds; k++) {
            slotOf(me ^ (1 << k), combine).expect(k + 1, scratch.base(), scratch.address() + (k + 1) * bytes,
                    bytes, false);
        }
    }

    private RecvSlot slotOf(int peer, ReduceOp combine) {
        if (slotByPeer[peer] == null) {
            slotByPeer[peer] = slot(peer, lastStep + 1, dtype, combine);
        }
        return slotByPeer[peer];
    }

    @Override
    int progress() {
        int work = 0;
        while (phase <= lastStep) {
            int peer = peerOf(phase);
            if (peer < 0) {
                phase++;
                continue;
            }
            boolean sends = sendsIn(phase);
            boolean receives = receivesIn(phase);
            if (sends) {
                if (sending == null) {
                    sending = sender(peer, phase, buffer);
                }
                work += sending.push(buffer.length(), this);
                if (!sending.done()) {
                    return work;
                }
            }
            if (receives) {
                RecvSlot slot = slotByPeer[peer];
                if (!slot.complete(phase)) {
                    waitingPeer = slot.srcRank;
                    waitingStep = phase;
                    return work;
                }
                if (phase <= rounds && me < pow2) {
                    long offset = (long) phase * buffer.length();
                    Reducer.reduce(dtype, op == ReduceOp.AVG ? ReduceOp.SUM : op, buffer.base(), buffer.address(),
                            scratch.base(), scratch.address() + offset, buffer.length());
                }
            }
            if (phase == rounds && op == ReduceOp.AVG && me < pow2) {
                Reducer.divide(dtype, buffer.base(), buffer.address(), buffer.length(), n);
            }
            sending = null;
            waitingPeer = -1;
            phase++;
            work++;
        }
        return work;
    }

    /** The partner in a phase, or -1 when this member sits the phase out. */
    private int peerOf(int p) {
        if (p == 0 || p == lastStep) {
            if (me >= pow2) {
                return me - pow2;
            }
            return me + pow2 < n ? me + pow2 : -1;
        }
        return me < pow2 ? me ^ (1 << (p - 1)) : -1;
    }

    private boolean sendsIn(int p) {
        if (p == 0) {
            return me >= pow2;
        }
        if (p == lastStep) {
            return me < pow2;
        }
        return true;
    }

    private boolean receivesIn(int p) {
        if (p == 0) {
            return me < pow2;
        }
        if (p == lastStep) {
            return me >= pow2;
        }
        return true;
    }

    @Override
    boolean done() {
        return phase > lastStep;
    }

    @Override
    int blockingPeer() {
        if (waitingPeer >= 0) {
            return waitingPeer;
        }
        return sending != null ? sending.peerRank() : -1;
    }

    @Override
    String waitingFor() {
        if (waitingPeer >= 0) {
            for (RecvSlot s : slots) {
                if (s.srcRank == waitingPeer) {
                    return stepState(s, waitingStep);
                }
            }
        }
        return sending != null ? "rank " + sending.peerRank() + " to take phase " + phase + " ("
                + sending.progress() + ")" : "phase " + phase;
    }
}
