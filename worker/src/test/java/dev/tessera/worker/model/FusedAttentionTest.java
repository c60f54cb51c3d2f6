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

    /**
     * The float32 token-major path of CausalSelfAttention (fused QKV gemm, RoPE inside the kernel) against
     * the float64 path (explicit RoPE and permutes) on identical float-representable weights and inputs.
     */
    @Test
    void tokenMajorSelfAttentionMatchesFloat64Path() {
        ModelConfig cfg = new ModelConfig(11, 64, 1, 2, 12, 0, 0, 0, 0, 10000.0, 1e-5, 0.0, 64);
        int b = 2;
        int t = 37;
        ParameterStore p64 = store(cfg, DataType.DOUBLE);
        ParameterStore p32 = store(cfg, DataType.FLOAT);
        Mem w = new Mem(p64.params());
        for (int i = 0; i < p64.numel(); i++) {
            w.set(i, (float) (0.15 * rng.nextGaussian()));
        }
        p32.params().assign(p64.params().castTo(DataType.FLOAT));
        INDArray x = rand(b * t, 64);
        INDArray r = rand(b * t, 64);
        double[][] ref = runAttention(p64, cfg, b, t, x, r);
        double[][] got = runAttention(p32, cfg, b, t, x.castTo(DataType.FLOAT), r.castTo(DataType.FLOAT));
        String[] what = {"out", "dx", "grads"};
        for (int i = 0; i < what.length; i++) {
            float[] g = new float[got[i].length];
            for (int j = 0; j < g.length; j++) {
                g[j] = (float) got[i][j];
            }
            close(what[i], ref[i], g, 2e-5);
        }
    }

    /**
     * The token-major entry points gather a block of heads per batch row; outputs and input gradients are the
     * same bits for one head per block, a partial last block (3 heads in blocks of 2) and all heads at once.
     */
    @Test
    void tokenMajorResultsDoNotDependOnHeadBlocks() {
        int batch = 2;
        int heads = 3;
        int t = 21;
        int d = 16;
        int c = heads * d;
        INDArray qkv = rand(batch * t, 3 * c).castTo(DataType.FLOAT);
        INDArray dy = rand(batch * t, c).castTo(DataType.FLOAT);
        Rope rope = new Rope(d, 10000.0, t, 0);
        float[][] first = null;
        for (int block = 1; block <= heads; block++) {
            AttentionCore core = new AttentionCore(DataType.FLOAT, batch * heads, heads, t, t, d, 0, 0, null, block);
            INDArray y = Nd4j.create(DataType.FLOAT, batch * t, c);
            INDArray dqkv = Nd4j.create(DataType.FLOAT, batch * t, 3 * c);
            core.forwardTokenMajor(qkv, rope, y);
            core.backwardTokenMajor(qkv, rope, dy, dqkv);
            float[][] got = {y.data().asFloat(), dqkv.data().asFloat()};
            assertTrue(dqkv.norm2Number().doubleValue() > 0, "the backward wrote dq, dk, dv");
            if (first == null) {
                first = got;
            } else {
                assertArrayEquals(first[0], got[0], "y with blocks of " + block);
                assertArrayEquals(first[1], got[1], "dqkv with blocks of " + block);
            }
        }
    }

    private static ParameterStore store(ModelConfig cfg, DataType dt) {
        ParameterStore.Builder pb = ParameterStore.builder();
        CausalSelfAttention.register(pb, "a", cfg.dModel());
        return pb.build(dt);
    }

    private static double[][] runAttention(ParameterStore ps, ModelConfig cfg, int b, int t, INDArray x, INDArray r) {
        CausalSelfAttention attn = new CausalSelfAttention(ps, "a", cfg, b, t, null);
        INDArray out = Nd4j.zeros(ps.dataType(), (long) b * t, cfg.dModel());
        INDArray dx = Nd4j.create(ps.dataType(), (long) b * t, cfg.dModel());
        attn.forward(x, out);
        attn.backward(x, r, dx);
        return new double[][] {GradCheck.values(out), GradCheck.values(dx), GradCheck.values(ps.grads())};
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
        AttentionCore ref = new AttentionCore(DataType.DOUBLE, bh, 1, tq, tk, d, qPos0, kPos0, null);
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
        AttentionCore core = new AttentionCore(DataType.FLOAT, bh, 1, tq, tk, d, qPos0, kPos0, null);
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
        close(what, want, got, 2e-6);
    }

    private static void close(String what, double[] want, float[] got, double tol) {
        double scale = 1e-30;
        for (double w : want) {
            scale = Math.max(scale, Math.abs(w));
        }
        double err = 0;
        for (int i = 0; i < want.length; i++) {
            err = Math.max(err, Math.abs(want[i] - got[i]));
        }
        assertTrue(err <= tol * scale, what + ": max abs error " + err + " vs magnitude " + scale);
    }
}
