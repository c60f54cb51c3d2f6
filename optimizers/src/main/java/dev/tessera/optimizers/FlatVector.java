package dev.tessera.optimizers;

import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Element access to a contiguous float32 or float64 ND4J array through a direct NIO view made once, so the
 * factored optimizers run one loop body for both dtypes and compute in double. There are exactly two
 * implementations, so call sites stay bimorphic and the JIT inlines them; nothing is boxed or allocated per call.
 */
sealed interface FlatVector permits FlatVector.Floats, FlatVector.Doubles {

    double get(int i);

    void set(int i, double value);

    static FlatVector of(INDArray contiguous) {
        if (contiguous.dataType() == DataType.DOUBLE) {
            return new Doubles(AdamW.doubles(contiguous));
        }
        if (contiguous.dataType() == DataType.FLOAT) {
            return new Floats(AdamW.floats(contiguous));
        }
        throw new IllegalArgumentException("only float32 and float64 buffers are supported, got "
                + contiguous.dataType());
    }

    /** Values are rounded to float32 on store (the state stays fp32, ALGORITHMS.md conventions). */
    record Floats(FloatBuffer buffer) implements FlatVector {
        @Override
        public double get(int i) {
            return buffer.get(i);
        }

        @Override
        public void set(int i, double value) {
            buffer.put(i, (float) value);
        }
    }

    record Doubles(DoubleBuffer buffer) implements FlatVector {
        @Override
        public double get(int i) {
            return buffer.get(i);
        }

        @Override
        public void set(int i, double value) {
            buffer.put(i, value);
        }
    }
}
