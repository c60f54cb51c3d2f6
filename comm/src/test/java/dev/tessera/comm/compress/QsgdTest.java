package dev.tessera.comm.compress;

import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static dev.tessera.comm.compress.CodecAssertions.assertAllocatesNothing;
import static dev.tessera.comm.compress.CodecAssertions.assertRefused;
import static dev.tessera.comm.compress.CodecAssertions.buffer;
import static dev.tessera.comm.compress.CodecAssertions.encode;
import static dev.tessera.comm.compress.CodecAssertions.floats;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class QsgdTest {

    /**
     * Each decoded value takes one of two levels a step apart, so Hoeffding bounds the mean of N independent
     * encodings: {@code P(|mean - x| >= t) <= 2 exp(-2 N t^2 / step^2)}. With t as below the chance that any of
     * the n elements strays is under 1e-6 (the seeds are fixed, so the test is deterministic; the bound says it
     * was not tuned to them). The float32 rounding of the decoded levels adds 1e-6 of the scale at most.
     */
    @Test
    void theMeanOfManyEncodingsConvergesToTheValues() {
        int n = 300;
        int samples = 2000;
        Qsgd codec = new Qsgd(4);
        float[] x = gaussian(n, 5);
        double[] sum = new double[n];
        for (int seed = 0; seed < samples; seed++) {
            float[] d = decode(codec, encode(codec, x, seed), n);
            for (int i = 0; i < n; i++) {
                sum[i] += d[i];
            }
        }
        double deviations = Math.log(2 * n / 1e-6) / (2.0 * samples);
        for (int i = 0; i < n; i++) {
            float scale = bucketScale(x, i, codec.bucket());
            double step = scale / 7.0;
            double bound = step * Math.sqrt(deviations) + 1e-6 * scale;
            assertEquals(x[i], sum[i] / samples, bound, "element " + i);
        }
    }

    @Test
    void theSameSeedGivesTheSameBytes() {
        Qsgd codec = new Qsgd(5, 64);
        float[] x = gaussian(1000, 6);
        assertArrayEquals(encode(codec, x, 42), encode(new Qsgd(5, 64), x, 42));
        assertFalse(Arrays.equals(encode(codec, x, 42), encode(codec, x, 43)));
        UnsafeBuffer shifted = new UnsafeBuffer(new byte[4 * (x.length + 3)]);
        shifted.putBytes(12, buffer(x), 0, 4 * x.length);
        UnsafeBuffer out = new UnsafeBuffer(new byte[codec.maxEncodedBytes(x.length)]);
        int length = codec.encode(shifted, 3, x.length, out, 0, 42);
        assertArrayEquals(encode(codec, x, 42), Arrays.copyOf(out.byteArray(), length), "a run at element 3");
    }

    @Test
    void aDecodedValueIsOneOfItsTwoNeighbouringLevels() {
        for (int bits = 2; bits <= 8; bits++) {
            Qsgd codec = new Qsgd(bits, 50);
            int levels = (1 << (bits - 1)) - 1;
            float[] x = gaussian(777, bits);
            for (int seed = 0; seed < 20; seed++) {
                float[] d = decode(codec, encode(codec, x, seed), x.length);
                for (int i = 0; i < x.length; i++) {
                    float scale = bucketScale(x, i, codec.bucket());
                    double step = (double) scale / levels;
                    double lo = Math.floor(Math.abs(x[i]) / step) * step;
                    double tolerance = 1e-6 * scale;
                    double magnitude = Math.abs(d[i]);
                    assertTrue(Math.abs(magnitude - lo) <= tolerance || Math.abs(magnitude - lo - step) <= tolerance,
                            "bits " + bits + " element " + i + ": " + x[i] + " decoded as " + d[i]);
                    assertTrue(d[i] == 0 || Math.signum(d[i]) == Math.signum(x[i]), "sign of element " + i);
                    assertTrue(magnitude <= scale, "element " + i + " above its bucket's scale");
                }
            }
        }
    }

    @Test
    void aZeroBucketDecodesToZeros() {
        Qsgd codec = new Qsgd(4);
        float[] x = gaussian(3 * 128 + 10, 7);
        Arrays.fill(x, 128, 256, 0f);
        float[] d = decode(codec, encode(codec, x, 1), x.length);
        for (int i = 128; i < 256; i++) {
            assertEquals(0f, d[i], "element " + i);
        }
        float[] zeros = new float[300];
        assertArrayEquals(zeros, decode(codec, encode(codec, zeros, 1), zeros.length));
    }

    @Test
    void moreBitsLessError() {
        float[] x = gaussian(4096, 8);
        UnsafeBuffer src = buffer(x);
        double previous = Double.POSITIVE_INFINITY;
        for (int bits = 2; bits <= 8; bits++) {
            double expected = Qsgd.expectedSquaredError(src, 0, x.length, bits, Qsgd.DEFAULT_BUCKET);
            assertTrue(expected < previous, bits + " bits");
            previous = expected;
        }
        assertTrue(squaredError(new Qsgd(8), x, 9) < squaredError(new Qsgd(4), x, 9));
    }

    /**
     * The squared error of one encoding is a sum of n independent terms, term i in [0, step_i^2], whose mean is
     * the expected error. Over N seeds Hoeffding gives {@code P(|mean - E| >= t) <= 2 exp(-2 N t^2 / sum step_i^4)};
     * t below makes that 1e-9, about 3% of E here.
     */
    @Test
    void expectedSquaredErrorMatchesTheMeanOverSeeds() {
        int n = 1000;
        int samples = 400;
        int bits = 3;
        Qsgd codec = new Qsgd(bits);
        float[] x = gaussian(n, 10);
        double sumStep4 = 0;
        for (int i = 0; i < n; i++) {
            double step = bucketScale(x, i, codec.bucket()) / 3.0;
            sumStep4 += step * step * step * step;
        }
        double mean = 0;
        for (int seed = 0; seed < samples; seed++) {
            mean += squaredError(codec, x, seed) / samples;
        }
        double expected = codec.expectedSquaredError(buffer(x), 0, n);
        double tolerance = Math.sqrt(Math.log(2 / 1e-9) * sumStep4 / (2.0 * samples));
        assertTrue(tolerance < 0.05 * expected, "the bound is tight enough to mean something");
        assertEquals(expected, mean, tolerance);
    }

    @Test
    void encodedLengthIsTheSizeModelRoundedUpToBytes() {
        for (int bits = 2; bits <= 8; bits++) {
            for (int bucket : new int[] {1, 7, 128}) {
                for (int n : new int[] {0, 1, 5, 127, 128, 129, 1000, 12_345}) {
                    Qsgd codec = new Qsgd(bits, bucket);
                    int bytes = encode(codec, gaussian(n, n), 0).length;
                    long model = Qsgd.sizeBits(n, bits, bucket);
                    assertEquals((model + 7) / 8, bytes, bits + " bits, bucket " + bucket + ", n " + n);
                    assertEquals(codec.maxEncodedBytes(n), bytes);
                }
            }
        }
        assertEquals(1000L * 4 + 8 * 32, Qsgd.sizeBits(1000, 4, 128));
    }

    @Test
    void nonFiniteValuesAreRefused() {
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
            float[] x = gaussian(300, 11);
            x[200] = bad;
            assertThrows(IllegalArgumentException.class, () -> encode(new Qsgd(4), x, 0));
            assertThrows(IllegalArgumentException.class,
                    () -> Qsgd.expectedSquaredError(buffer(x), 0, x.length, 4, 128));
        }
    }

    @Test
    void malformedBytesAreRefusedAndLeaveTheDestinationAlone() {
        // 5 values of 3 bits: 15 bits, so the last byte has one bit of padding.
        Qsgd codec = new Qsgd(3, 4);
        float[] x = {1, -2, 3, -4, 5};
        byte[] good = encode(codec, x, 0);
        assertEquals(8 + 2, good.length);
        assertRefused(codec, Arrays.copyOf(good, good.length - 1), x.length);
        assertRefused(codec, Arrays.copyOf(good, good.length + 1), x.length);
        for (float scale : new float[] {Float.NaN, Float.POSITIVE_INFINITY, -1f}) {
            byte[] bad = good.clone();
            new UnsafeBuffer(bad).putFloat(4, scale, Wire.ORDER);
            assertRefused(codec, bad, x.length);
        }
        byte[] padded = good.clone();
        padded[padded.length - 1] |= (byte) 0x80;
        assertRefused(codec, padded, x.length);
        assertRefused(codec, good, x.length + 1);
    }

    /**
     * The one-pass residual is the reference's, {@code decodeAdd} at scale -1 over a copy of the values, bit for bit:
     * every bit width, a bucket that does not divide the run, a run at an offset in both buffers, an all-zero bucket,
     * negative zeros, and values equal to their bucket's scale (the top level).
     */
    @Test
    void theOnePassResidualIsTheDecodedOneBitForBit() {
        int n = 1000;
        float[] x = gaussian(n, 13);
        Arrays.fill(x, 128, 256, 0f);
        x[300] = -0f;
        x[301] = -0f;
        x[500] = 4f;
        x[501] = -4f;
        for (int bits = 2; bits <= 8; bits++) {
            for (int bucket : new int[] {128, 37}) {
                Qsgd codec = new Qsgd(bits, bucket);
                UnsafeBuffer src = new UnsafeBuffer(new byte[4 * (n + 5)]);
                src.putBytes(20, buffer(x), 0, 4 * n);
                int bytes = codec.maxEncodedBytes(n);
                UnsafeBuffer reference = new UnsafeBuffer(new byte[bytes]);
                int length = codec.encode(src, 5, n, reference, 0, 99);
                UnsafeBuffer expected = new UnsafeBuffer(new byte[4 * n]);
                double expectedError = ErrorFeedback.keepResidual(codec, src, 5, n, reference, 0, length, expected, 0);

                UnsafeBuffer out = new UnsafeBuffer(new byte[bytes + 3]);
                UnsafeBuffer residual = new UnsafeBuffer(new byte[4 * (n + 2)]);
                assertEquals(length, codec.encodeKeepingResidual(src, 5, n, out, 3, 99, residual, 2));
                String what = bits + " bits, bucket " + bucket;
                assertArrayEquals(reference.byteArray(), Arrays.copyOfRange(out.byteArray(), 3, 3 + length), what);
                assertArrayEquals(expected.byteArray(), Arrays.copyOfRange(residual.byteArray(), 8, 8 + 4 * n), what);
                assertEquals(expectedError, ErrorFeedback.squaredNorm(residual, 2, n), 0.0, what);
            }
        }
    }

    @Test
    void runsOutsideTheirBuffersAreRefusedBeforeAnythingIsWritten() {
        Qsgd codec = new Qsgd(4);
        UnsafeBuffer src = buffer(gaussian(100, 14));
        UnsafeBuffer out = new UnsafeBuffer(new byte[codec.maxEncodedBytes(100)]);
        UnsafeBuffer residual = new UnsafeBuffer(new byte[4 * 99]);
        assertThrows(IndexOutOfBoundsException.class, () -> codec.encode(src, 1, 100, out, 0, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> codec.encode(src, 0, 100, out, 1, 0));
        assertThrows(IndexOutOfBoundsException.class,
                () -> codec.encodeKeepingResidual(src, 0, 100, out, 0, 0, residual, 0));
        assertTrue(Arrays.equals(new byte[out.capacity()], out.byteArray()), "nothing was written");
        assertThrows(IndexOutOfBoundsException.class, () -> codec.decodeAdd(out, 0, out.capacity(), 1f, residual, 0,
                100));
        assertTrue(Arrays.equals(new byte[residual.capacity()], residual.byteArray()), "nothing was added");
    }

    @Test
    void encodingAndDecodingAllocateNothingOnceWarm() {
        int n = 100_000;
        Qsgd codec = new Qsgd(4);
        UnsafeBuffer src = buffer(gaussian(n, 12));
        UnsafeBuffer wire = new UnsafeBuffer(new byte[codec.maxEncodedBytes(n)]);
        UnsafeBuffer dst = new UnsafeBuffer(new byte[4 * n]);
        assertAllocatesNothing(() -> {
            int length = codec.encode(src, 0, n, wire, 0, 0);
            codec.decodeAdd(wire, 0, length, 1f, dst, 0, n);
        });
    }

    /** {@code ||x - Dec(Enc(x))||^2} on the error-feedback path that training and L-GreCo use. */
    private static double squaredError(Qsgd codec, float[] x, long seed) {
        byte[] bytes = encode(codec, x, seed);
        UnsafeBuffer residual = new UnsafeBuffer(new byte[4 * x.length]);
        return ErrorFeedback.keepResidual(codec, buffer(x), 0, x.length, new UnsafeBuffer(bytes), 0, bytes.length,
                residual, 0);
    }

    private static float[] decode(Qsgd codec, byte[] bytes, int n) {
        UnsafeBuffer dst = new UnsafeBuffer(new byte[4 * n]);
        codec.decodeAdd(new UnsafeBuffer(bytes), 0, bytes.length, 1f, dst, 0, n);
        return floats(dst, n);
    }

    private static float bucketScale(float[] x, int i, int bucket) {
        int start = i / bucket * bucket;
        float scale = 0;
        for (int j = start; j < Math.min(x.length, start + bucket); j++) {
            scale = Math.max(scale, Math.abs(x[j]));
        }
        return scale;
    }

    private static float[] gaussian(int n, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rng.nextGaussian();
        }
        return x;
    }
}
