package dev.tessera.worker.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The float32 fused attention kernel against the float64 reference path (ND4J matmuls, which the
 * finite-difference checks cover) on the same, float-representable inputs: outputs and all three input
 * gradients, for full-vector and tail head dims, partial register blocks, and sequence-parallel offsets.
 */
class FusedAttentionTest {
    private final SplittableRandom rng = new SplittableRandom(5);

    @Test
    void selfAttentionShapes() {
        compare(3, 37, 37, 32, 0, 0);
        compare(2, 64, 64, 64, 0, 0);
        compare(2, 9, 9, 8, 0, 0);   // head dim below a vector: the scalar P V paths
        compare(1, 18, 18, 24, 0, 0); // head dim not a whole number of vectors
    }

    @Test
    void sequenceParallelOffsets() {
        compare(2, 20, 45, 16, 40, 10); // remote keys all in the past, some rows see all
        compare(2, 12, 30, 32, 0, 5);   // keys start after the first queries: rows that see nothing
        compare(2, 33, 17, 32, 64, 64);
    }

    @Test
    void bitIdenticalRunToRun() {
        int bh = 4;
        int t = 50;
        int d = 32;
        INDArray[] in = inputs(bh, t, t, d);
        float[][] a = runF32(bh, t, t, d, 0, 0, in);
        float[][] b = runF32(bh, t, t, d, 0, 0, in);
        for (int i = 0; i < a.length; i++) {
            assertArrayEquals(a[i], b[i]);
        }
    }

    private INDArray[] inputs(int bh, int tq, int tk, int d) {
        return new INDArray[] {rand(bh, tq, d), rand(bh, tk, d), rand(bh, tk, d), rand(bh, tq, d)};
    }

    /** Values rounded to float32, so both precisions see the same numbers. */
    private INDArray rand(long... shape) {
        INDArray a = Nd4j.create(DataType.DOUBLE, shape);
        Mem m = new Mem(a);
        for (int i = 0; i < a.length(); i++) {
            m.set(i, (float) (1.5 * rng.nextGaussian()));
        }
        return a;
    }

    private void compare(int bh, int tq, int tk, int d, int qPos0, int kPos0) {
        INDArray[] in = inputs(bh, tq, tk, d);
        AttentionCore ref = new AttentionCore(DataType.DOUBLE, bh, tq, tk, d, qPos0, kPos0, null);
        INDArray y = Nd4j.create(DataType.DOUBLE, bh, tq, d);
        INDArray dq = Nd4j.create(DataType.DOUBLE, bh, tq, d);
        INDArray dk = Nd4j.create(DataType.DOUBLE, bh, tk, d);
        INDArray dv = Nd4j.create(DataType.DOUBLE, bh, tk, d);
        ref.forward(in[0], in[1], in[2], y);
        ref.backward(in[0], in[1], in[2], in[3], dq, dk, dv);
        float[][] got = runF32(bh, tq, tk, d, qPos0, kPos0, in);
        String shape = bh + "x" + tq + "x" + tk + "x" + d + " @" + qPos0 + "/" + kPos0;
        close("y " + shape, GradCheck.values(y), got[0]);
        close("dq " + shape, GradCheck.values(dq), got[1]);
        close("dk " + shape, GradCheck.values(dk), got[2]);
        close("dv " + shape, GradCheck.values(dv), got[3]);
    }

    private static float[][] runF32(int bh, int tq, int tk, int d, int qPos0, int kPos0, INDArray[] in) {
        AttentionCore core = new AttentionCore(DataType.FLOAT, bh, tq, tk, d, qPos0, kPos0, null);
        INDArray q = in[0].castTo(DataType.FLOAT);
        INDArray k = in[1].castTo(DataType.FLOAT);
        INDArray v = in[2].castTo(DataType.FLOAT);
        INDArray dy = in[3].castTo(DataType.FLOAT);
        INDArray y = Nd4j.create(DataType.FLOAT, bh, tq, d);
        INDArray dq = Nd4j.create(DataType.FLOAT, bh, tq, d);
        INDArray dk = Nd4j.create(DataType.FLOAT, bh, tk, d);
        INDArray dv = Nd4j.create(DataType.FLOAT, bh, tk, d);
        // Garbage in the outputs first: the kernel must overwrite every element.
        for (INDArray o : new INDArray[] {y, dq, dk, dv}) {
            o.assign(Float.NaN);
        }
        core.forward(q, k, v, y);
        core.backward(q, k, v, dy, dq, dk, dv);
        return new float[][] {y.data().asFloat(), dq.data().asFloat(), dk.data().asFloat(), dv.data().asFloat()};
    }

    /** Max abs error within float32 rounding of the largest magnitude involved. */
    private static void close(String what, double[] want, float[] got) {
        double scale = 1e-30;
        for (double w : want) {
            scale = Math.max(scale, Math.abs(w));
        }
        double err = 0;
        for (int i = 0; i < want.length; i++) {
            err = Math.max(err, Math.abs(want[i] - got[i]));
        }
        assertTrue(err <= 2e-6 * scale, what + ": max abs error " + err + " vs magnitude " + scale);
    }
}
