package dev.tessera.optimizers;

import dev.tessera.optimizers.kernel.KernelThreads;
import dev.tessera.optimizers.kernel.NativeMemory;
import java.nio.ByteBuffer;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Global L2 norm of a flat gradient buffer, summed in a fixed order in double precision so the value
 * (and hence the clipping) is bit-identical run to run and independent of thread count: fixed chunks
 * summed over the {@link KernelThreads}, then the chunk sums in chunk order. A buffer over 1 GiB is read in
 * {@link NativeMemory#windows windows}.
 */
public final class GradNorm {

    private GradNorm() {
    }

    /** Elements per partial sum: fixed, so the summation order never depends on the thread count. */
    static final int CHUNK = 1 << 16;

    public static double sumOfSquares(INDArray flat) {
        long n = flat.length();
        double[] partial = new double[Math.toIntExact((n + CHUNK - 1) / CHUNK)];
        // A window is a whole number of chunks (both powers of two), so each chunk lies in one window and the
        // partial sums are the same as over one view of the whole buffer.
        long[] windows = NativeMemory.windows(n, flat.dataType().width());
        for (int w = 0; w + 1 < windows.length; w++) {
            int len = (int) (windows[w + 1] - windows[w]);
            int first = (int) (windows[w] / CHUNK);
            ByteBuffer bytes = NativeMemory.bytes(flat, windows[w], len);
            if (flat.dataType() == DataType.DOUBLE) {
                DoubleBuffer g = bytes.asDoubleBuffer();
                KernelThreads.forRange((len + CHUNK - 1) / CHUNK, (part, from, to) -> {
                    for (int c = from; c < to; c++) {
                        partial[first + c] = squares(g, c * CHUNK, Math.min(len, (c + 1) * CHUNK));
                    }
                });
            } else {
                FloatBuffer g = bytes.asFloatBuffer();
                KernelThreads.forRange((len + CHUNK - 1) / CHUNK, (part, from, to) -> {
                    for (int c = from; c < to; c++) {
                        partial[first + c] = squares(g, c * CHUNK, Math.min(len, (c + 1) * CHUNK));
                    }
                });
            }
        }
        double sum = 0;
        for (double p : partial) {
            sum += p;
        }
        return sum;
    }

    /** Four interleaved double accumulators (a fixed order), combined pairwise. */
    private static double squares(FloatBuffer g, int from, int to) {
        double s0 = 0;
        double s1 = 0;
        double s2 = 0;
        double s3 = 0;
        int i = from;
        for (; i + 3 < to; i += 4) {
            double a = g.get(i);
            double b = g.get(i + 1);
            double c = g.get(i + 2);
            double d = g.get(i + 3);
            s0 += a * a;
            s1 += b * b;
            s2 += c * c;
            s3 += d * d;
        }
        for (; i < to; i++) {
            double a = g.get(i);
            s0 += a * a;
        }
        return (s0 + s1) + (s2 + s3);
    }

    private static double squares(DoubleBuffer g, int from, int to) {
        double s = 0;
        for (int i = from; i < to; i++) {
            double x = g.get(i);
            s += x * x;
        }
        return s;
    }

    /** The factor that brings a gradient of norm {@code norm} down to {@code maxNorm} (1 when within). */
    public static double clipScale(double norm, double maxNorm) {
        if (maxNorm <= 0 || norm <= maxNorm) {
            return 1.0;
        }
        return maxNorm / (norm + 1e-6);
    }
}
