package dev.tessera.comm.compress;

import dev.tessera.comm.FloatRun;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * QSGD-style stochastic quantisation (Alistarh et al., 2017, with per-bucket max scaling as in CGX): each bucket of
 * {@code B} values is scaled by its largest magnitude, and each value becomes a sign and a level {@code l} in
 * {@code [0, s]}, {@code s = 2^(bits-1) - 1}, rounded up or down at random with the probability that makes the
 * decoded value unbiased.
 *
 * <p>Wire format, little-endian, no header: {@code ceil(n/B)} fp32 bucket scales, then the {@code n} codes of
 * {@code bits} bits each as one bit stream (value i in bits {@code [i*bits, (i+1)*bits)}, low bits first in each
 * byte), zero-padded to a byte. A code is the level in its low {@code bits-1} bits and the sign in its top bit.
 * The length is the size model's {@code n*bits + ceil(n/B)*32} bits rounded up to a byte; bits, B and n are
 * known to the receiver, so a header would only repeat them.
 */
public final class Qsgd implements Encoder {

    /** The bucket size of the L-GreCo candidates (ALGORITHMS.md section 4). */
    public static final int DEFAULT_BUCKET = 128;

    private static final String NAME = "Qsgd";

    private final int bits;
    private final int bucket;
    private final int levels;

    /** A quantiser of {@code bits} in [2, 8] bits per value, sign included, in buckets of {@link #DEFAULT_BUCKET}. */
    public Qsgd(int bits) {
        this(bits, DEFAULT_BUCKET);
    }

    /** A quantiser of {@code bits} in [2, 8] bits per value, sign included, in buckets of {@code bucket} values. */
    public Qsgd(int bits, int bucket) {
        if (bits < 2 || bits > 8) {
            throw new IllegalArgumentException("Qsgd bits must lie in [2, 8] (sign included): " + bits);
        }
        if (bucket < 1) {
            throw new IllegalArgumentException("Qsgd bucket size must be positive: " + bucket);
        }
        this.bits = bits;
        this.bucket = bucket;
        this.levels = (1 << (bits - 1)) - 1;
    }

    public int bits() {
        return bits;
    }

    public int bucket() {
        return bucket;
    }

    /** The size model, {@code n*bits + ceil(n/bucket)*32} bits. */
    public static long sizeBits(long n, int bits, int bucket) {
        return n * bits + buckets(n, bucket) * 32;
    }

    private static long buckets(long n, int bucket) {
        return (n + bucket - 1) / bucket;
    }

    @Override
    public int maxEncodedBytes(int n) {
        return Wire.bytes(NAME, (sizeBits(n, bits, bucket) + 7) / 8);
    }

    /** Always {@link #maxEncodedBytes}: the scales and codes of {@code n} values have one size. */
    @Override
    public boolean fixedLength() {
        return true;
    }

    @Override
    public int encode(DirectBuffer src, int index, int n, MutableDirectBuffer out, int outOffset, long seed) {
        return encode(src, index, n, out, outOffset, seed, null, 0);
    }

    /**
     * Encodes and sets the residual in the same pass: the decoded value of each code is known where it is drawn, and
     * the residual is computed as {@link #decodeAdd} at scale -1 over a copy of the values computes it, so its bits
     * are the same.
     */
    @Override
    public int encodeKeepingResidual(DirectBuffer src, int index, int n, MutableDirectBuffer out, int outOffset,
                                     long seed, MutableDirectBuffer residual, int rIndex) {
        return encode(src, index, n, out, outOffset, seed, residual, rIndex);
    }

    /** {@code residual} null: no residual is kept. */
    private int encode(DirectBuffer src, int index, int n, MutableDirectBuffer out, int outOffset, long seed,
                       MutableDirectBuffer residual, int rIndex) {
        int length = maxEncodedBytes(n);
        out.boundsCheck(outOffset, length);
        Object outBase = out.byteArray();
        long outAt = out.addressOffset();
        Object srcBase = src.byteArray();
        long srcAt = FloatRun.locate(src, index, n);
        boolean keep = residual != null;
        Object resBase = keep ? residual.byteArray() : null;
        long resAt = keep ? FloatRun.locate(residual, rIndex, n) : 0;
        int scalePos = outOffset;
        int pos = outOffset + 4 * (int) buckets(n, bucket);
        int signBit = 1 << (bits - 1);
        long state = SplitMix64.mix(seed);
        long acc = 0;
        int accBits = 0;
        for (int start = 0; start < n; start += bucket) {
            int end = Math.min(n, start + bucket);
            float scale = 0;
            for (int i = start; i < end; i++) {
                float v = FloatRun.get(srcBase, srcAt, i);
                float m = Math.abs(v);
                if (!(m <= Float.MAX_VALUE)) {
                    throw Wire.nonFinite(NAME, i, v);
                }
                scale = Math.max(scale, m);
            }
            out.putFloat(scalePos, scale, Wire.ORDER);
            scalePos += 4;
            // A zero bucket has zero magnitudes: 0 / 0 is avoided by dividing by 1, and every level is 0.
            double divisor = scale > 0 ? scale : 1;
            double negativeUnit = (double) scale / levels * -1f; // decodeAdd's unit at scale -1
            for (int i = start; i < end; i++) {
                float v = FloatRun.get(srcBase, srcAt, i);
                // |v| / scale <= 1 exactly in double, so u never exceeds the top level.
                double u = Math.abs(v) / divisor * levels;
                int floor = (int) u;
                // Rounding up happens at random: written without branches, which the draws would mispredict.
                int level = floor + (SplitMix64.unit(state += SplitMix64.GAMMA) < u - floor ? 1 : 0);
                int negative = v < 0 ? -1 : 0;
                int code = level | (negative & -level >> 31 & signBit); // no sign on a zero level
                if (keep) {
                    int signedLevel = (level ^ negative) - negative;
                    FloatRun.put(resBase, resAt, i, v + (float) (signedLevel * negativeUnit));
                }
                acc |= (long) code << accBits;
                accBits += bits;
                if (accBits >= 32) {
                    Wire.putInt(outBase, outAt + pos, (int) acc);
                    pos += 4;
                    acc >>>= 32;
                    accBits -= 32;
                }
            }
        }
        for (; accBits > 0; accBits -= 8) {
            out.putByte(pos++, (byte) acc);
            acc >>>= 8;
        }
        return length;
    }

    @Override
    public void decodeAdd(DirectBuffer in, int inOffset, int length, float scale, MutableDirectBuffer dst, int index,
                          int n) {
        Wire.requireEncoding(NAME, in, inOffset, length, n, maxEncodedBytes(n));
        Object dstBase = dst.byteArray();
        long dstAt = FloatRun.locate(dst, index, n);
        int bucketCount = (int) buckets(n, bucket);
        // Check what can be wrong before touching dst: every code decodes to a level, so only the scales and the
        // padding can be malformed, and a refused encoding leaves dst as it was.
        for (int b = 0; b < bucketCount; b++) {
            float s = in.getFloat(inOffset + 4 * b, Wire.ORDER);
            if (!(s >= 0 && s <= Float.MAX_VALUE)) {
                throw new IllegalArgumentException(NAME + ": bucket " + b + " has scale " + s);
            }
        }
        int usedInLastByte = (int) (((long) n * bits) & 7);
        if (usedInLastByte != 0 && (in.getByte(inOffset + length - 1) & 0xFF) >>> usedInLastByte != 0) {
            throw new IllegalArgumentException(NAME + ": padding bits after the last code are not zero");
        }
        Object inBase = in.byteArray();
        long inAt = in.addressOffset();
        int pos = inOffset + 4 * bucketCount;
        int end = inOffset + length;
        int mask = (1 << bits) - 1;
        int signShift = bits - 1;
        long acc = 0;
        int accBits = 0;
        for (int b = 0; b < bucketCount; b++) {
            double unit = (double) in.getFloat(inOffset + 4 * b, Wire.ORDER) / levels * scale;
            int stop = Math.min(n, (b + 1) * bucket);
            for (int i = b * bucket; i < stop; i++) {
                if (accBits < bits) {
                    if (pos + 4 <= end) {
                        acc |= (Wire.getInt(inBase, inAt + pos) & 0xFFFF_FFFFL) << accBits;
                        accBits += 32;
                        pos += 4;
                    } else {
                        acc |= (in.getByte(pos) & 0xFFL) << accBits;
                        accBits += 8;
                        pos++;
                    }
                }
                int code = (int) acc & mask;
                acc >>>= bits;
                accBits -= bits;
                int level = code & (mask >>> 1);
                int negative = -(code >>> signShift); // -1 where the sign bit is set
                int signedLevel = (level ^ negative) - negative;
                FloatRun.put(dstBase, dstAt, i, FloatRun.get(dstBase, dstAt, i) + (float) (signedLevel * unit));
            }
        }
    }

    /** {@link #expectedSquaredError(DirectBuffer, int, int, int, int)} with this quantiser's bits and bucket. */
    public double expectedSquaredError(DirectBuffer src, int index, int n) {
        return expectedSquaredError(src, index, n, bits, bucket);
    }

    /**
     * The expected squared L2 error of quantising {@code src[index, index + n)}: {@code sum_i (x_i - lo_i)(hi_i - x_i)}
     * over the magnitudes, where {@code lo_i <= |x_i| <= hi_i} are the neighbouring levels of x_i's bucket. It is
     * the variance of stochastic rounding, L-GreCo's error for a QSGD candidate without sampling.
     */
    public static double expectedSquaredError(DirectBuffer src, int index, int n, int bits, int bucket) {
        int levels = (1 << (bits - 1)) - 1;
        double sum = 0;
        for (int start = 0; start < n; start += bucket) {
            int end = Math.min(n, start + bucket);
            float scale = 0;
            for (int i = start; i < end; i++) {
                float v = src.getFloat((index + i) << 2);
                if (!(Math.abs(v) <= Float.MAX_VALUE)) {
                    throw Wire.nonFinite(NAME, i, v);
                }
                scale = Math.max(scale, Math.abs(v));
            }
            if (scale == 0) {
                continue;
            }
            double bucketSum = 0;
            for (int i = start; i < end; i++) {
                double u = Math.abs(src.getFloat((index + i) << 2)) / (double) scale * levels;
                double below = u - Math.floor(u);
                bucketSum += below * (1 - below);
            }
            double step = (double) scale / levels;
            sum += bucketSum * step * step;
        }
        return sum;
    }
}
