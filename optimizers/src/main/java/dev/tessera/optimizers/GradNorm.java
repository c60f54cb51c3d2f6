package dev.tessera.optimizers;

import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Global L2 norm of a flat gradient buffer, summed in a fixed order in double precision so the value
 * (and hence the clipping) is bit-identical run to run and independent of thread count.
 */
public final class GradNorm {

    private GradNorm() {
    }

    public static double sumOfSquares(INDArray flat) {
        double sum = 0;
        if (flat.dataType() == DataType.DOUBLE) {
            DoubleBuffer g = AdamW.doubles(flat);
            for (int i = 0, n = g.limit(); i < n; i++) {
                double x = g.get(i);
                sum += x * x;
            }
        } else {
            FloatBuffer g = AdamW.floats(flat);
            for (int i = 0, n = g.limit(); i < n; i++) {
                double x = g.get(i);
                sum += x * x;
            }
        }
        return sum;
    }

    /** The factor that brings a gradient of norm {@code norm} down to {@code maxNorm} (1 when within). */
    public static double clipScale(double norm, double maxNorm) {
        if (maxNorm <= 0 || norm <= maxNorm) {
            return 1.0;
        }
        return maxNorm / (norm + 1e-6);
    }
}
