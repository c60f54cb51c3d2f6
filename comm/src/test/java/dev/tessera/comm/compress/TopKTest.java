package dev.tessera.comm.compress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

class TopKTest {

    private static UnsafeBuffer floats(float... values) {
        UnsafeBuffer b = new UnsafeBuffer(new byte[4 * values.length]);
        for (int i = 0; i < values.length; i++) {
            b.putFloat(4 * i, values[i]);
        }
        return b;
    }

    private static float[] decode(TopK topK, UnsafeBuffer encoded, int length, int n) {
        UnsafeBuffer out = new UnsafeBuffer(new byte[4 * n]);
        topK.decodeAdd(encoded, 0, length, 1f, out, 0, n);
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = out.getFloat(4 * i);
        }
        return values;
    }

    @Test
    void keepsExactlyTheLargestMagnitudesOnRandomInputs() {
        SplittableRandom rng = new SplittableRandom(3);
        for (int trial = 0; trial < 50; trial++) {
            int n = 1 + rng.nextInt(3000);
            double density = new double[] {0.001, 0.01, 0.1, 0.5, 1.0}[trial % 5];
            float[] x = new float[n];
            for (int i = 0; i < n; i++) {
                x[i] = (float) rng.nextGaussian();
            }
            TopK topK = new TopK(density);
            int k = (int) Math.max(1, Math.ceil(density * n));
            UnsafeBuffer out = new UnsafeBuffer(new byte[topK.maxEncodedBytes(n)]);
            int length = topK.encode(floats(x), 0, n, out, 0, 0);
            assertEquals(8L * k, length);
            assertEquals(TopK.sizeBits(n, density), 8L * length);
            float[] decoded = decode(topK, out, length, n);
            // The reference: indices sorted by magnitude, largest first, lower index first among equals.
            Integer[] order = IntStream.range(0, n).boxed().toArray(Integer[]::new);
            Arrays.sort(order, Comparator.<Integer>comparingDouble(i -> -Math.abs(x[i])).thenComparingInt(i -> i));
            float[] expected = new float[n];
            for (int j = 0; j < k; j++) {
                expected[order[j]] = x[order[j]];
            }
            assertEquals(Arrays.toString(expected), Arrays.toString(decoded), "n " + n + " density " + density);
        }
    }

    @Test
    void tiesAtTheThresholdKeepTheLowestIndices() {
        TopK topK = new TopK(0.5);
        UnsafeBuffer out = new UnsafeBuffer(new byte[64]);
        int length = topK.encode(floats(1, -1, 1, -1, 1, -1), 0, 6, out, 0, 0);
        assertEquals("[1.0, -1.0, 1.0, 0.0, 0.0, 0.0]", Arrays.toString(decode(topK, out, length, 6)));
    }

    @Test
    void keepsTheCeilingOfTheDecimalProduct() {
        assertEquals(7, new TopK(0.07).kept(100)); // 0.07 x 100 is 7.000000000000001 in doubles
        assertEquals(8, new TopK(0.071).kept(100));
        assertEquals(1, new TopK(0.001).kept(5));
        assertEquals(11, new TopK(0.01).kept(1024));
    }

    @Test
    void edgeCases() {
        TopK all = new TopK(1.0);
        UnsafeBuffer out = new UnsafeBuffer(new byte[64]);
        int length = all.encode(floats(0.5f, -2f, 0f), 0, 3, out, 0, 0);
        assertEquals("[0.5, -2.0, 0.0]", Arrays.toString(decode(all, out, length, 3)), "density 1 is lossless");
        TopK one = new TopK(0.01);
        length = one.encode(floats(-3f), 0, 1, out, 0, 0);
        assertEquals("[-3.0]", Arrays.toString(decode(one, out, length, 1)));
        length = one.encode(floats(0f, 0f, 0f), 0, 3, out, 0, 0);
        assertEquals("[0.0, 0.0, 0.0]", Arrays.toString(decode(one, out, length, 3)), "all zeros");
        assertEquals(0, one.encode(floats(), 0, 0, out, 0, 0));
    }

    @Test
    void refusesNonFiniteValuesAndMalformedBytes() {
        TopK topK = new TopK(0.5);
        UnsafeBuffer out = new UnsafeBuffer(new byte[64]);
        assertThrows(IllegalArgumentException.class, () -> topK.encode(floats(1f, Float.NaN), 0, 2, out, 0, 0));
        assertThrows(IllegalArgumentException.class,
                () -> topK.encode(floats(Float.NEGATIVE_INFINITY, 1f), 0, 2, out, 0, 0));
        int length = topK.encode(floats(4f, 3f, 2f, 1f), 0, 4, out, 0, 0);
        UnsafeBuffer sink = new UnsafeBuffer(new byte[16]);
        assertThrows(IllegalArgumentException.class, () -> topK.decodeAdd(out, 0, length - 8, 1f, sink, 0, 4),
                "truncated");
        out.putInt(8, 0); // the second index no longer ascends
        assertThrows(IllegalArgumentException.class, () -> topK.decodeAdd(out, 0, length, 1f, sink, 0, 4));
        out.putInt(8, 9); // out of range
        assertThrows(IllegalArgumentException.class, () -> topK.decodeAdd(out, 0, length, 1f, sink, 0, 4));
        assertThrows(IllegalArgumentException.class, () -> new TopK(0));
    }

    @Test
    void errorFeedbackLosesNothing() {
        int n = 500;
        SplittableRandom rng = new SplittableRandom(11);
        TopK topK = new TopK(0.02);
        UnsafeBuffer a = new UnsafeBuffer(new byte[4 * n]);
        UnsafeBuffer residual = new UnsafeBuffer(new byte[4 * n]);
        UnsafeBuffer sent = new UnsafeBuffer(new byte[4 * n]);
        UnsafeBuffer encoded = new UnsafeBuffer(new byte[topK.maxEncodedBytes(n)]);
        double[] gradientSum = new double[n];
        for (int step = 0; step < 30; step++) {
            for (int i = 0; i < n; i++) {
                float g = (float) rng.nextGaussian();
                gradientSum[i] += g;
                a.putFloat(4 * i, g);
            }
            ErrorFeedback.addResidual(a, 0, residual, 0, n);
            int length = topK.encode(a, 0, n, encoded, 0, step);
            double error = ErrorFeedback.keepResidual(topK, a, 0, n, encoded, 0, length, residual, 0);
            double squares = 0;
            for (int i = 0; i < n; i++) {
                squares += (double) residual.getFloat(4 * i) * residual.getFloat(4 * i);
            }
            assertEquals(squares, error, 1e-9 * squares);
            topK.decodeAdd(encoded, 0, length, 1f, sent, 0, n);
        }
        for (int i = 0; i < n; i++) {
            assertEquals(gradientSum[i], (double) sent.getFloat(4 * i) + residual.getFloat(4 * i), 1e-3,
                    "element " + i + ": what was sent plus what is kept is every gradient");
        }
    }
}
