package dev.tessera.comm.compress;

import dev.tessera.comm.FloatRun;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * Error feedback (EF-SGD): what an encoding dropped is added to the next step's gradient of the same layer, so
 * nothing is lost, only delayed. Per step and layer: {@code a = g + e}; send {@code Enc(a)}; {@code e = a - Dec(Enc(a))}.
 * The residual lives in gradient space, so it carries over unchanged when the layer's encoder changes.
 */
public final class ErrorFeedback {

    private ErrorFeedback() {
    }

    /** {@code values[index, index + n) += residual[rIndex, rIndex + n)}: the tensor about to be encoded. */
    public static void addResidual(MutableDirectBuffer values, int index, DirectBuffer residual, int rIndex, int n) {
        Object valuesBase = values.byteArray();
        long valuesAt = FloatRun.locate(values, index, n);
        Object residualBase = residual.byteArray();
        long residualAt = FloatRun.locate(residual, rIndex, n);
        for (int i = 0; i < n; i++) {
            FloatRun.put(valuesBase, valuesAt, i,
                    FloatRun.get(valuesBase, valuesAt, i) + FloatRun.get(residualBase, residualAt, i));
        }
    }

    /**
     * Sets {@code residual[rIndex, rIndex + n) = a - Dec(encoded)}, where {@code a = values[index, index + n)} is
     * what was encoded, and returns the squared L2 norm of that error (L-GreCo's {@code e_l}).
     */
    public static double keepResidual(Encoder encoder, DirectBuffer values, int index, int n, DirectBuffer encoded,
                                      int encodedOffset, int encodedLength, MutableDirectBuffer residual,
                                      int rIndex) {
        residual.putBytes(rIndex << 2, values, index << 2, n << 2);
        encoder.decodeAdd(encoded, encodedOffset, encodedLength, -1f, residual, rIndex, n);
        return squaredNorm(residual, rIndex, n);
    }

    /** The squared L2 norm of {@code residual[rIndex, rIndex + n)}, summed in float64 in element order. */
    public static double squaredNorm(DirectBuffer residual, int rIndex, int n) {
        Object base = residual.byteArray();
        long at = FloatRun.locate(residual, rIndex, n);
        double squared = 0;
        for (int i = 0; i < n; i++) {
            double e = FloatRun.get(base, at, i);
            squared += e * e;
        }
        return squared;
    }
}
