package dev.tessera.comm;

import org.agrona.DirectBuffer;
import org.agrona.UnsafeApi;

import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * A posted receive: where the frames of one collective from one source rank land, step by step. The poller
 * (whichever thread holds the poll lock) copies or reduces each frame straight from the Aeron term buffer into
 * the step's destination and then publishes the new byte count with release semantics, so a waiter that reads
 * the count sees the data. Frames of a step arrive in order, so the received bytes are always a prefix:
 * a ring step can forward it while the rest is still arriving.
 */
final class RecvSlot {

    final int groupId;
    final int kind;
    final int seq;
    final int srcRank;
    private final DType dtype;
    private final ReduceOp op;
    private final Object[] base;
    private final long[] address;
    private final long[] expected;
    private final boolean[] reduce;
    /** Bytes received per step; -1 until the first frame of the step (a step may be empty). */
    private final AtomicLongArray received;
    private volatile String error;

    RecvSlot(int groupId, int kind, int seq, int srcRank, int steps, DType dtype, ReduceOp op) {
        this.groupId = groupId;
        this.kind = kind;
        this.seq = seq;
        this.srcRank = srcRank;
        this.dtype = dtype;
        this.op = op;
        this.base = new Object[steps];
        this.address = new long[steps];
        this.expected = new long[steps];
        this.reduce = new boolean[steps];
        Arrays.fill(expected, -1);
        this.received = new AtomicLongArray(steps);
        for (int i = 0; i < steps; i++) {
            received.set(i, -1);
        }
    }

    /** Step {@code step} lands {@code bytes} bytes at (base, address), copied or reduced into what is there. */
    RecvSlot expect(int step, Object stepBase, long stepAddress, long bytes, boolean reduceInto) {
        base[step] = stepBase;
        address[step] = stepAddress;
        expected[step] = bytes;
        reduce[step] = reduceInto;
        return this;
    }

    boolean matches(int groupId, int kind, int seq, int srcRank) {
        return this.seq == seq && this.groupId == groupId && this.srcRank == srcRank && this.kind == kind;
    }

    /** Bytes of {@code step} that have landed, or -1 when no frame of it has. */
    long received(int step) {
        return received.get(step);
    }

    long expected(int step) {
        return expected[step];
    }

    boolean complete(int step) {
        return received.get(step) == expected[step];
    }

    int steps() {
        return expected.length;
    }

    String error() {
        return error;
    }

    /**
     * Lands one frame. Every field read from the wire is checked against what this slot expects; a frame that
     * does not fit is refused (the caller counts it) and marks the slot failed, since the stream is now broken.
     */
    boolean land(int step, long streamOffset, DirectBuffer buffer, int payloadOffset, int length) {
        if (step < 0 || step >= expected.length || expected[step] < 0) {
            error = "rank " + srcRank + " sent a frame for step " + step + " which this operation does not have";
            return false;
        }
        long have = Math.max(0, received.get(step));
        if (streamOffset != have || length < 0 || streamOffset + length > expected[step]) {
            error = "rank " + srcRank + " sent bytes [" + streamOffset + ", " + (streamOffset + length)
                    + ") of step " + step + " but " + expected[step] + " were expected and " + have
                    + " had arrived (mismatched sizes on the two sides?)";
            return false;
        }
        if (reduce[step] && length % dtype.size() != 0) {
            error = "rank " + srcRank + " sent " + length + " bytes, not a whole number of " + dtype;
            return false;
        }
        if (length > 0) {
            long src = buffer.addressOffset() + payloadOffset;
            long dst = address[step] + streamOffset;
            if (reduce[step]) {
                Reducer.reduce(dtype, op, base[step], dst, buffer.byteArray(), src, length);
            } else {
                UnsafeApi.copyMemory(buffer.byteArray(), src, base[step], dst, length);
            }
        }
        received.setRelease(step, streamOffset + length);
        return true;
    }
}
