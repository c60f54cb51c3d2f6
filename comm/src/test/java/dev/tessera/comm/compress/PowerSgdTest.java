package dev.tessera.comm.compress;

import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PowerSgdTest {

    /** Float32 columns with double sums: entries of P^T P within a few float ulps of I, times sqrt(rows). */
    private static final double ORTHONORMAL = 1e-5;

    @Test
    void aRankRMatrixIsReconstructedOnceWarm() {
        int n = 60;
        int m = 40;
        int r = 4;
        UnsafeBuffer matrix = lowRank(n, m, r, 1);
        PowerSgd layer = new PowerSgd(n, m, r, 2);
        UnsafeBuffer p = new UnsafeBuffer(new byte[4 * n * r]);
        UnsafeBuffer out = new UnsafeBuffer(new byte[4 * n * m]);
        double relative = Double.NaN;
        for (int step = 0; step < 3; step++) {
            layer.computeP(matrix, 0, p, 0);
            PowerSgd.orthonormalize(p, 0, n, r);
            layer.computeQ(matrix, 0, p, 0);
            layer.decompressInto(p, 0, layer.q(), 0, out, 0);
            relative = Math.sqrt(distance2(matrix, out, n * m) / norm2(matrix, n * m));
        }
        assertTrue(relative < 1e-5, "relative error " + relative);
        // The error-feedback residual, M - P Q^T, by the add-scaled variant on a copy of M.
        UnsafeBuffer residual = new UnsafeBuffer(new byte[4 * n * m]);
        residual.putBytes(0, matrix, 0, 4 * n * m);
        layer.decompressAdd(p, 0, layer.q(), 0, -1f, residual, 0);
        assertEquals(distance2(matrix, out, n * m), norm2(residual, n * m), 1e-12 * norm2(matrix, n * m));
    }

    @Test
    void orthonormalizeGivesOrthonormalColumns() {
        SplittableRandom rng = new SplittableRandom(3);
        int rows = 200;
        int cols = 32;
        UnsafeBuffer a = new UnsafeBuffer(new byte[4 * rows * cols]);
        for (int e = 0; e < rows * cols; e++) {
            a.putFloat(4 * e, (float) (rng.nextGaussian() * 1e3));
        }
        PowerSgd.orthonormalize(a, 0, rows, cols);
        assertOrthonormal(a, 0, rows, cols);
    }

    @Test
    void dependentAndZeroColumnsBecomeOrthonormalNotNaN() {
        int rows = 10;
        int cols = 5;
        UnsafeBuffer a = new UnsafeBuffer(new byte[4 * rows * cols]);
        for (int i = 0; i < rows; i++) {
            a.putFloat(4 * (i * cols), i + 1);           // column 0
            a.putFloat(4 * (i * cols + 1), 2 * (i + 1)); // column 1 = 2 x column 0
            a.putFloat(4 * (i * cols + 3), i % 2);       // column 2 zero, column 3 independent
            a.putFloat(4 * (i * cols + 4), -(i + 1));    // column 4 = -column 0
        }
        PowerSgd.orthonormalize(a, 0, rows, cols);
        assertOrthonormal(a, 0, rows, cols);

        UnsafeBuffer zero = new UnsafeBuffer(new byte[4 * rows * rows]);
        PowerSgd.orthonormalize(zero, 0, rows, rows);
        assertOrthonormal(zero, 0, rows, rows);
        assertEquals(1f, zero.getFloat(0), "the first fallback is e_0: deterministic");
    }

    @Test
    void aZeroMatrixCompressesToZerosWithoutNaN() {
        int n = 12;
        int m = 9;
        int r = 4;
        UnsafeBuffer matrix = new UnsafeBuffer(new byte[4 * n * m]);
        PowerSgd layer = new PowerSgd(n, m, r, 4);
        UnsafeBuffer p = new UnsafeBuffer(new byte[4 * n * r]);
        UnsafeBuffer out = new UnsafeBuffer(new byte[4 * n * m]);
        for (int step = 0; step < 2; step++) {
            layer.computeP(matrix, 0, p, 0);
            PowerSgd.orthonormalize(p, 0, n, r);
            assertOrthonormal(p, 0, n, r);
            layer.computeQ(matrix, 0, p, 0);
            layer.decompressInto(p, 0, layer.q(), 0, out, 0);
            assertEquals(0.0, norm2(out, n * m));
        }
        assertEquals(0.0, PowerSgd.singleProcessError(matrix, 0, n, m, r, 5));
    }

    @Test
    void resizeKeepsTheFirstColumnsAndStaysOrthonormal() {
        int m = 50;
        PowerSgd layer = new PowerSgd(80, m, 8, 6);
        assertOrthonormal(layer.q(), 0, m, 8);
        float[] before = floats(layer.q(), m * 8);

        layer.resize(3, 7);
        assertEquals(3, layer.rank());
        assertOrthonormal(layer.q(), 0, m, 3);
        float[] kept = floats(layer.q(), m * 3);
        for (int j = 0; j < m; j++) {
            for (int c = 0; c < 3; c++) {
                assertEquals(before[j * 8 + c], kept[j * 3 + c], "row " + j + " column " + c);
            }
        }

        layer.resize(16, 7);
        assertEquals(16, layer.rank());
        assertOrthonormal(layer.q(), 0, m, 16);
        float[] grown = floats(layer.q(), m * 16);
        for (int j = 0; j < m; j++) {
            for (int c = 0; c < 3; c++) {
                assertEquals(kept[j * 3 + c], grown[j * 16 + c], 1e-6, "row " + j + " column " + c);
            }
        }

        layer.resize(1000, 8);
        assertEquals(m, layer.rank(), "capped at min(n, m)");
        assertOrthonormal(layer.q(), 0, m, m);
    }

    @Test
    void rankIsCappedAndSizeFollowsTheModel() {
        assertEquals(3, new PowerSgd(3, 100, 8, 0).rank());
        assertEquals(32L * 4 * (768 + 3072), PowerSgd.sizeBits(768, 3072, 4));
        assertEquals(32L * 3 * (3 + 100), PowerSgd.sizeBits(3, 100, 8));
        // What crosses the wire: P (n x r) then Q (m x r), float32.
        int n = 30;
        int m = 20;
        PowerSgd layer = new PowerSgd(n, m, 5, 0);
        long sentBytes = 4L * n * layer.rank() + layer.q().capacity();
        assertEquals(PowerSgd.sizeBits(n, m, 5), 8 * sentBytes);
        assertThrows(IllegalArgumentException.class, () -> new PowerSgd(n, m, 0, 0));
    }

    @Test
    void singleProcessErrorFallsWithRank() {
        int n = 64;
        int m = 48;
        // A spectrum that decays: sum over k of 2^-k u_k v_k^T with random u, v.
        UnsafeBuffer matrix = new UnsafeBuffer(new byte[4 * n * m]);
        SplittableRandom rng = new SplittableRandom(9);
        for (int k = 0; k < m; k++) {
            double[] u = rng.doubles(n).map(v -> v - 0.5).toArray();
            double[] v = rng.doubles(m).map(w -> w - 0.5).toArray();
            double weight = Math.pow(0.7, k);
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < m; j++) {
                    int o = 4 * (i * m + j);
                    matrix.putFloat(o, (float) (matrix.getFloat(o) + weight * u[i] * v[j]));
                }
            }
        }
        double total = norm2(matrix, n * m);
        double previous = Double.POSITIVE_INFINITY;
        for (int r : new int[] {1, 2, 4, 8, 16, 32}) {
            double error = PowerSgd.singleProcessError(matrix, 0, n, m, r, 11);
            assertTrue(error < previous, "rank " + r + ": " + error + " after " + previous);
            assertTrue(error < total);
            previous = error;
        }
        assertTrue(PowerSgd.singleProcessError(matrix, 0, n, m, m, 11) < 1e-9 * total, "full rank is exact");
    }

    @Test
    void nonFiniteMatricesAreRefused() {
        UnsafeBuffer matrix = lowRank(6, 5, 2, 12);
        matrix.putFloat(4 * 7, Float.NaN);
        PowerSgd layer = new PowerSgd(6, 5, 2, 0);
        assertThrows(IllegalArgumentException.class,
                () -> layer.computeP(matrix, 0, new UnsafeBuffer(new byte[4 * 12]), 0));
    }

    private static UnsafeBuffer lowRank(int n, int m, int r, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        double[] a = rng.doubles((long) n * r).map(v -> v - 0.5).toArray();
        double[] b = rng.doubles((long) m * r).map(v -> v - 0.5).toArray();
        UnsafeBuffer matrix = new UnsafeBuffer(new byte[4 * n * m]);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < m; j++) {
                double sum = 0;
                for (int c = 0; c < r; c++) {
                    sum += a[i * r + c] * b[j * r + c];
                }
                matrix.putFloat(4 * (i * m + j), (float) sum);
            }
        }
        return matrix;
    }

    private static void assertOrthonormal(DirectBuffer a, int index, int rows, int cols) {
        for (int c = 0; c < cols; c++) {
            for (int d = 0; d <= c; d++) {
                double dot = 0;
                for (int i = 0; i < rows; i++) {
                    dot += (double) a.getFloat(4 * (index + i * cols + c)) * a.getFloat(4 * (index + i * cols + d));
                }
                assertEquals(c == d ? 1.0 : 0.0, dot, ORTHONORMAL, "columns " + c + " and " + d);
            }
        }
    }

    private static float[] floats(DirectBuffer a, int count) {
        float[] x = new float[count];
        for (int e = 0; e < count; e++) {
            x[e] = a.getFloat(4 * e);
        }
        return x;
    }

    private static double norm2(DirectBuffer a, int n) {
        double sum = 0;
        for (int e = 0; e < n; e++) {
            double v = a.getFloat(4 * e);
            sum += v * v;
        }
        return sum;
    }

    private static double distance2(DirectBuffer a, DirectBuffer b, int n) {
        double sum = 0;
        for (int e = 0; e < n; e++) {
            double d = a.getFloat(4 * e) - b.getFloat(4 * e);
            sum += d * d;
        }
        return sum;
    }
}
