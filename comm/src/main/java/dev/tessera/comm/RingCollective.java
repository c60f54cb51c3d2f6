package dev.tessera.comm;

/**
 * The ring over a buffer cut into one segment per member. At ring step {@code s} a member sends segment
 * {@code (me - s - 1) mod N} to its right neighbour and receives segment {@code (me - s - 2) mod N} from its
 * left one; steps {@code 0 .. N-2} reduce what arrives into the segment (reduce-scatter: member {@code me} ends
 * with segment {@code me} complete) and steps {@code N-1 .. 2N-3} copy it (all-gather). All-reduce runs all
 * {@code 2N-2} steps, reduce-scatter the first half, all-gather the second.
 *
 * <p>Pipelining: what is sent at step {@code s} is what arrived at step {@code s-1}, and it is forwarded as
 * soon as each frame has landed, not after the whole segment. The reduction order of each element is fixed by
 * the ring (segment {@code j} is summed starting at member {@code j+1}, then {@code j+2}, ...), and the result
 * is copied around, so every member ends with the same bits, run after run.
 */
class RingCollective extends Collective {

    private final Region buffer;
    private final long elements;
    private final DType dtype;
    private final ReduceOp op;
    private final int firstStep;
    private final int steps;
    private final int n;
    private final int me;
    private final long[] segmentBounds; // byte offsets of the N segments and their end; null: even cuts
    private RecvSlot fromLeft;
    private StreamSender[] senders;
    private int current;

    RingCollective(ProcessGroup group, String operation, Region buffer, DType dtype, ReduceOp op,
                   int firstStep, int lastStep) {
        this(group, operation, buffer, dtype, op, firstStep, lastStep, null);
    }

    /** With {@code segmentBounds} ({@code N + 1} byte offsets), segment {@code j} is the caller's, not an even cut. */
    RingCollective(ProcessGroup group, String operation, Region buffer, DType dtype, ReduceOp op,
                   int firstStep, int lastStep, long[] segmentBounds) {
        super(group, operation);
        this.segmentBounds = segmentBounds;
        this.buffer = buffer;
        this.elements = buffer.length() / dtype.size();
        this.dtype = dtype;
        this.op = op;
        this.firstStep = firstStep;
        this.steps = lastStep - firstStep + 1;
        this.n = group.size();
        this.me = group.rank();
    }

    long segmentStart(int segment) {
        if (segmentBounds != null) {
            return segmentBounds[segment];
        }
        return elements * segment / n * dtype.size();
    }

    long segmentLength(int segment) {
        return segmentStart(segment + 1) - segmentStart(segment);
    }

    @Override
    void start() {
        int left = mod(me - 1, n);
        int right = mod(me + 1, n);
        fromLeft = slot(left, steps, dtype, op == ReduceOp.AVG ? ReduceOp.SUM : op);
        senders = new StreamSender[steps];
        for (int i = 0; i < steps; i++) {
            int s = firstStep + i;
            int recvSegment = mod(me - s - 2, n);
            fromLeft.expect(i, buffer.base(), buffer.address() + segmentStart(recvSegment),
                    segmentLength(recvSegment), s < n - 1);
            int sendSegment = mod(me - s - 1, n);
            senders[i] = sender(right, i, buffer.slice(segmentStart(sendSegment), segmentLength(sendSegment)));
        }
    }

    @Override
    int progress() {
        int work = 0;
        while (current < steps) {
            long available = current == 0 ? Long.MAX_VALUE : fromLeft.received(current - 1);
            work += senders[current].push(available == Long.MAX_VALUE
                    ? segmentLength(mod(me - firstStep - 1, n)) : available, this);
            if (!senders[current].done()) {
                break;
            }
            current++;
        }
        return work;
    }

    @Override
    boolean done() {
        return current == steps && fromLeft.complete(steps - 1);
    }

    @Override
    void finish() {
        if (op == ReduceOp.AVG) {
            if (firstStep + steps > n - 1) {
                // All-reduce: average is taken on the whole (identical) result.
                Reducer.divide(dtype, buffer.base(), buffer.address(), buffer.length(), n);
            } else {
                Reducer.divide(dtype, buffer.base(), buffer.address() + segmentStart(me), segmentLength(me), n);
            }
        }
    }

    @Override
    int blockingPeer() {
        for (int i = 0; i < steps; i++) {
            if (!fromLeft.complete(i)) {
                return fromLeft.srcRank;
            }
        }
        return current < steps ? senders[current].peerRank() : -1;
    }

    @Override
    String waitingFor() {
        for (int i = 0; i < steps; i++) {
            if (!fromLeft.complete(i)) {
                return stepState(fromLeft, i);
            }
        }
        return current < steps ? "rank " + senders[current].peerRank() + " to take step " + current + " ("
                + senders[current].progress() + ")" : "nothing";
    }
}
