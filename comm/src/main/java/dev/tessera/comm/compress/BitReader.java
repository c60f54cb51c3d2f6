package dev.tessera.comm.compress;

import org.agrona.DirectBuffer;

/**
 * Reads what {@link BitWriter} wrote. Every way bytes can fail to be such a stream (too short, an overlong code,
 * stray bytes or non-zero padding at the end) is an {@link IllegalArgumentException}, never an index exception,
 * so a decoder can hand untrusted bytes straight to it.
 */
final class BitReader {

    private DirectBuffer buffer;
    private long bitAt; // absolute bit address: 8 x byte offset + bit within it
    private long bitLimit;

    void start(DirectBuffer buffer, int offset, int length) {
        this.buffer = buffer;
        this.bitAt = 8L * offset;
        this.bitLimit = 8L * offset + 8L * length;
    }

    /** Reads {@code bits} bits ({@code 0 <= bits <= 32}) as the low bits of the result. */
    int read(int bits) {
        if (bitAt + bits > bitLimit) {
            throw new IllegalArgumentException("truncated: " + bits + " more bits wanted, "
                    + (bitLimit - bitAt) + " left");
        }
        int value = 0;
        for (int i = 0; i < bits; i++) {
            value = (value << 1) | readBitUnchecked();
        }
        return value;
    }

    int readBit() {
        return read(1);
    }

    /** Reads an Elias gamma code; its value is at least 1 and at most {@link Integer#MAX_VALUE}. */
    int readEliasGamma() {
        int magnitude = 0;
        while (readBit() == 0) {
            if (++magnitude > 30) {
                throw new IllegalArgumentException("Elias gamma code longer than any int's");
            }
        }
        return (1 << magnitude) | read(magnitude);
    }

    /** Checks that only the zero padding of the last byte is left. */
    void finish() {
        long left = bitLimit - bitAt;
        if (left >= 8) {
            throw new IllegalArgumentException((left / 8) + " bytes after the end of the encoding");
        }
        if (read((int) left) != 0) {
            throw new IllegalArgumentException("non-zero padding after the end of the encoding");
        }
    }

    private int readBitUnchecked() {
        int b = buffer.getByte((int) (bitAt >>> 3));
        int bit = (b >>> (7 - (int) (bitAt & 7))) & 1;
        bitAt++;
        return bit;
    }
}
