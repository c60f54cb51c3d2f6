package dev.tessera.comm.compress;

import org.agrona.DirectBuffer;
import org.agrona.UnsafeApi;

import java.nio.ByteOrder;

/** What the encoders share about their bytes on the wire. */
final class Wire {

    /** Encodings are little-endian whatever the host, so ranks on different hardware read each other's bytes. */
    static final ByteOrder ORDER = ByteOrder.LITTLE_ENDIAN;

    private static final boolean NATIVE_IS_WIRE_ORDER = ByteOrder.nativeOrder() == ORDER;

    private Wire() {
    }

    /**
     * The wire-order int at {@code address} of {@code base} ({@link DirectBuffer#byteArray()} or null), unchecked: for
     * codecs' inner loops over bytes whose range was checked once.
     */
    static int getInt(Object base, long address) {
        int v = UnsafeApi.getInt(base, address);
        return NATIVE_IS_WIRE_ORDER ? v : Integer.reverseBytes(v);
    }

    /** Writes {@code value} in wire order at {@code address} of {@code base}, unchecked, as {@link #getInt} reads. */
    static void putInt(Object base, long address, int value) {
        UnsafeApi.putInt(base, address, NATIVE_IS_WIRE_ORDER ? value : Integer.reverseBytes(value));
    }

    /**
     * Fails unless {@code in[offset, offset + length)} lies inside {@code in} and holds exactly {@code expected}
     * bytes: a codec's encoding has one length for a given run length, so anything else is truncated or foreign.
     */
    static void requireEncoding(String codec, DirectBuffer in, int offset, int length, int n, long expected) {
        if (n < 0) {
            throw new IllegalArgumentException(codec + ": negative run length " + n);
        }
        if (offset < 0 || length < 0 || (long) offset + length > in.capacity()) {
            throw new IllegalArgumentException(codec + ": bytes [" + offset + ", " + ((long) offset + length)
                    + ") lie outside a buffer of " + in.capacity());
        }
        if (length != expected) {
            throw new IllegalArgumentException(codec + ": " + length + " bytes, but an encoding of " + n
                    + " values is " + expected);
        }
    }

    /** A byte count as an int, or a clear failure where a run is too long for one encoding. */
    static int bytes(String codec, long bytes) {
        if (bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(codec + ": an encoding of " + bytes + " bytes exceeds one buffer");
        }
        return (int) bytes;
    }

    /** The failure for a NaN or infinite input value at element {@code i} of a run. */
    static IllegalArgumentException nonFinite(String codec, int i, float v) {
        return new IllegalArgumentException(codec + ": value " + v + " at element " + i + " is not finite");
    }
}
