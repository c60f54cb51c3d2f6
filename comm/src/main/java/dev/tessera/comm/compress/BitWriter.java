package dev.tessera.comm.compress;

import org.agrona.MutableDirectBuffer;

/**
 * Writes bit fields most significant bit first into a buffer, so that a field's bits read in wire order. One
 * instance is reused across encodings ({@link #start}) to keep encoding free of allocation.
 */
final class BitWriter {

    private MutableDirectBuffer buffer;
    private int offset;
    private int at;
    private long pending; // the low pendingBits bits are not yet written; fewer than 8 between calls
    private int pendingBits;

    void start(MutableDirectBuffer buffer, int offset) {
        this.buffer = buffer;
        this.offset = offset;
        this.at = offset;
        this.pending = 0;
        this.pendingBits = 0;
    }

    /** Writes the low {@code bits} bits of {@code value} ({@code 0 <= bits <= 32}). */
    void write(int value, int bits) {
        pending = (pending << bits) | (value & ((1L << bits) - 1));
        pendingBits += bits;
        while (pendingBits >= 8) {
            pendingBits -= 8;
            buffer.putByte(at++, (byte) (pending >>> pendingBits));
        }
    }

    /** Elias gamma of {@code value >= 1}: floor(log2 v) zeros, then v in floor(log2 v) + 1 bits. */
    void writeEliasGamma(int value) {
        int magnitude = 31 - Integer.numberOfLeadingZeros(value);
        write(0, magnitude);
        write(value, magnitude + 1);
    }

    /** Pads the last byte with zero bits and returns the bytes written since {@link #start}. */
    int finish() {
        if (pendingBits > 0) {
            write(0, 8 - pendingBits);
        }
        return at - offset;
    }

    /** The bits an Elias gamma code of {@code value >= 1} takes. */
    static int eliasGammaBits(int value) {
        return 2 * (31 - Integer.numberOfLeadingZeros(value)) + 1;
    }
}
