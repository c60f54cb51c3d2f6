package dev.tessera.comm.compress;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * One lossy encoding of a run of float32 values (one layer's gradient) into the bytes that cross the wire, and
 * back. The bytes {@link #encode} writes are exactly what is sent; the receiver needs only them and the run's
 * length to decode. The error-feedback residual {@code a - Dec(Enc(a))} is defined by {@link #decodeAdd} at scale
 * -1 ({@link ErrorFeedback#keepResidual}); {@link #encodeKeepingResidual} writes those bits as it encodes, and
 * training and L-GreCo's measurement both take it from there, so the error a codec is charged for is the one
 * training keeps.
 *
 * <p>Element indices are float indices into native-order buffers (byte offset = 4 x index). An encoder keeps no
 * state between calls: every random choice comes from the {@code seed} given to {@link #encode}, so a resumed
 * run encodes the same bits.
 */
public interface Encoder {

    /** The most bytes {@link #encode} writes for {@code n} values. */
    int maxEncodedBytes(int n);

    /**
     * Whether every encoding of {@code n} values is exactly {@link #maxEncodedBytes} bytes, so a receiver knows
     * its length without being told (and a reduction can skip exchanging lengths).
     */
    default boolean fixedLength() {
        return false;
    }

    /**
     * Encodes the {@code n} floats at {@code src[index, index + n)} into {@code out} from {@code outOffset}, and
     * returns the bytes written. {@code seed} seeds this encoding's random choices (stochastic rounding);
     * deterministic encoders ignore it. Fails with {@link IllegalArgumentException} on a NaN or infinite value.
     */
    int encode(DirectBuffer src, int index, int n, MutableDirectBuffer out, int outOffset, long seed);

    /**
     * Adds {@code scale} times the decoded values of one encoding ({@code in[inOffset, inOffset + length)}, as
     * {@link #encode} wrote it for {@code n} values) to the {@code n} floats at {@code dst[index, index + n)}.
     * Fails with {@link IllegalArgumentException} when the bytes are not such an encoding.
     */
    void decodeAdd(DirectBuffer in, int inOffset, int length, float scale, MutableDirectBuffer dst, int index, int n);

    /**
     * {@link #encode}, and sets {@code residual[rIndex, rIndex + n) = a - Dec(Enc(a))} for the values
     * {@code a = src[index, index + n)}: error feedback's residual, the same bits as {@link #decodeAdd} at scale -1
     * over a copy of {@code a} leaves. Returns the bytes written. A codec that knows each decoded value as it
     * encodes overrides this to do it in one pass.
     */
    default int encodeKeepingResidual(DirectBuffer src, int index, int n, MutableDirectBuffer out, int outOffset,
                                      long seed, MutableDirectBuffer residual, int rIndex) {
        int written = encode(src, index, n, out, outOffset, seed);
        residual.putBytes(rIndex << 2, src, index << 2, n << 2);
        decodeAdd(out, outOffset, written, -1f, residual, rIndex, n);
        return written;
    }
}
