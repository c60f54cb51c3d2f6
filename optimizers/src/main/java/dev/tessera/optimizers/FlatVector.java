package dev.tessera.optimizers;

import dev.tessera.optimizers.kernel.NativeMemory;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Element access to a contiguous float32 or float64 ND4J array (or one tensor of a flat buffer) through a direct
 * NIO view made once ({@link NativeMemory}), so the factored optimizers run one loop body for both dtypes and
 * compute in double. There are exactly two
 * implementations, so call sites stay bimorphic and the JIT inlines them; nothing is boxed or allocated per call.
 */
sealed interface FlatVector permits FlatVector.Floats, FlatVector.Doubles {

    double get(int i);

    void set(int i, double value);

    static FlatVector of(INDArray contiguous) {
        return of(contiguous, 0, contiguous.length());
    }

    /** Elements {@code [from, from + length)} of a contiguous array: index 0 is element {@code from}. */
    static FlatVector of(INDArray contiguous, long from, long length) {
        if (contiguous.dataType() == DataType.DOUBLE) {
            return new Doubles(NativeMemory.bytes(contiguous, from, length).asDoubleBuffer());
        }
        if (contiguous.dataType() == DataType.FLOAT) {
            return new Floats(NativeMemory.bytes(contiguous, from, length).asFloatBuffer());
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
