package dev.tessera.comm;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * Layout of a data frame: a 32-byte header followed by the payload, always inside one Aeron fragment (so a
 * frame is written by {@code tryClaim} straight from the caller's buffer and read straight into the
 * destination, never reassembled). Little-endian, 8-byte aligned payload.
 *
 * <pre>
 *  0 int  groupId     4 int  kind (collective or point-to-point)
 *  8 int  seq        12 int  srcRank (global; must match the authenticated session)
 * 16 int  step       20 int  payloadLength
 * 24 long offset of the payload within the step's stream
 * </pre>
 */
final class DataFrame {

    static final int GROUP_OFFSET = 0;
    static final int KIND_OFFSET = 4;
    static final int SEQ_OFFSET = 8;
    static final int SRC_OFFSET = 12;
    static final int STEP_OFFSET = 16;
    static final int LENGTH_OFFSET = 20;
    static final int STREAM_OFFSET = 24;
    static final int HEADER_LENGTH = 32;

    static final int KIND_COLLECTIVE = 0;
    static final int KIND_POINT_TO_POINT = 1;

    private DataFrame() {
    }

    static void writeHeader(MutableDirectBuffer buffer, int offset, int groupId, int kind, int seq, int srcRank,
                            int step, int payloadLength, long streamOffset) {
        buffer.putInt(offset + GROUP_OFFSET, groupId);
        buffer.putInt(offset + KIND_OFFSET, kind);
        buffer.putInt(offset + SEQ_OFFSET, seq);
        buffer.putInt(offset + SRC_OFFSET, srcRank);
        buffer.putInt(offset + STEP_OFFSET, step);
        buffer.putInt(offset + LENGTH_OFFSET, payloadLength);
        buffer.putLong(offset + STREAM_OFFSET, streamOffset);
    }

    static int groupId(DirectBuffer b, int o) {
        return b.getInt(o + GROUP_OFFSET);
    }

    static int kind(DirectBuffer b, int o) {
        return b.getInt(o + KIND_OFFSET);
    }

    static int seq(DirectBuffer b, int o) {
        return b.getInt(o + SEQ_OFFSET);
    }

    static int srcRank(DirectBuffer b, int o) {
        return b.getInt(o + SRC_OFFSET);
    }

    static int step(DirectBuffer b, int o) {
        return b.getInt(o + STEP_OFFSET);
    }

    static int payloadLength(DirectBuffer b, int o) {
        return b.getInt(o + LENGTH_OFFSET);
    }

    static long streamOffset(DirectBuffer b, int o) {
        return b.getLong(o + STREAM_OFFSET);
    }
}
