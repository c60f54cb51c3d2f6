package dev.tessera.optimizers;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class AdamWTest {

    /** The textbook equations, element by element, written independently of the fused loop. */
    private static void referenceStep(double[] p, double[] g, double[] m, double[] v, boolean[] decays,
                                      long t, double lr, double b1, double b2, double eps, double wd) {
        for (int i = 0; i < p.length; i++) {
            m[i] = b1 * m[i] + (1 - b1) * g[i];
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
            double mHat = m[i] / (1 - Math.pow(b1, t));
            double vHat = v[i] / (1 - Math.pow(b2, t));
            if (decays[i]) {
                p[i] -= lr * wd * p[i];
            }
            p[i] -= lr * mHat / (Math.sqrt(vHat) + eps);
        }
    }

    @Test
    void matchesReferenceEquationsStepForStepInFloat64() {
        List<ParamSpan> spans = List.of(
                new ParamSpan("w", 0, 6, new long[] {2, 3}),
                new ParamSpan("gain", 6, 3, new long[] {3}));
        AdamWConfig cfg = new AdamWConfig(0.9, 0.95, 1e-8, 0.1);
        INDArray params = Nd4j.zeros(DataType.DOUBLE, 9);
        INDArray grads = Nd4j.zeros(DataType.DOUBLE, 9);
        AdamW adamw = new AdamW(params, grads, spans, cfg);
        SplittableRandom rnd = new SplittableRandom(7);
        double[] p = new double[9];
        double[] m = new double[9];
        double[] v = new double[9];
        boolean[] decays = new boolean[9];
        for (int i = 0; i < 9; i++) {
            p[i] = rnd.nextDouble(-1, 1);
            params.putScalar(i, p[i]);
            decays[i] = i < 6;
        }
        for (long t = 1; t <= 5; t++) {
            double[] g = new double[9];
            for (int i = 0; i < 9; i++) {
                g[i] = rnd.nextDouble(-2, 2);
                grads.putScalar(i, g[i]);
            }
            double lr = 1e-2 * t;
            adamw.step(t, lr, 1.0);
            referenceStep(p, g, m, v, decays, t, lr, 0.9, 0.95, 1e-8, 0.1);
            for (int i = 0; i < 9; i++) {
                assertEquals(p[i], params.getDouble(i), 1e-15, "param " + i + " at step " + t);
            }
        }
        assertEquals(2 * 9 * 8, adamw.stateBytes());
    }

    @Test
    void gradScaleEqualsScalingTheGradientFirst() {
        List<ParamSpan> spans = List.of(new ParamSpan("w", 0, 4, new long[] {2, 2}));
        AdamWConfig cfg = new AdamWConfig(0.9, 0.999, 1e-8, 0.0);
        INDArray p1 = Nd4j.createFromArray(1.0, -2.0, 3.0, 0.5);
        INDArray p2 = p1.dup();
        INDArray g = Nd4j.createFromArray(0.3, -0.1, 0.0, 2.0);
        new AdamW(p1, g.mul(0.25), spans, cfg).step(1, 0.1, 1.0);
        new AdamW(p2, g, spans, cfg).step(1, 0.1, 0.25);
        for (int i = 0; i < 4; i++) {
            assertEquals(p1.getDouble(i), p2.getDouble(i), 1e-15);
        }
    }

    @Test
    void float32PathAgreesWithFloat64Path() {
        List<ParamSpan> spans = List.of(new ParamSpan("w", 0, 1000, new long[] {10, 100}));
        INDArray p64 = Nd4j.zeros(DataType.DOUBLE, 1000);
        INDArray g64 = Nd4j.zeros(DataType.DOUBLE, 1000);
        SplittableRandom rnd = new SplittableRandom(3);
        for (int i = 0; i < 1000; i++) {
            p64.putScalar(i, rnd.nextDouble(-1, 1));
            g64.putScalar(i, rnd.nextDouble(-1, 1));
        }
        INDArray p32 = p64.castTo(DataType.FLOAT);
        INDArray g32 = g64.castTo(DataType.FLOAT);
        AdamWConfig cfg = new AdamWConfig(0.9, 0.95, 1e-8, 0.1);
        AdamW a64 = new AdamW(p64, g64, spans, cfg);
        AdamW a32 = new AdamW(p32, g32, spans, cfg);
        for (long t = 1; t <= 3; t++) {
            a64.step(t, 1e-3, 0.5);
            a32.step(t, 1e-3, 0.5);
        }
        for (int i = 0; i < 1000; i++) {
            assertEquals(p64.getDouble(i), p32.getDouble(i), 1e-6);
        }
    }

    /**
     * The Vector API float32 path split over threads is bit-identical to the plain scalar float loop, over
     * spans with odd offsets and lengths (vector tails, parts cutting through spans), decayed or not.
     */
    @Test
    void float32VectorPathIsBitIdenticalToScalarFloatLoop() {
        float32VectorPathIsBitIdenticalToScalarFloatLoop(false);
        float32VectorPathIsBitIdenticalToScalarFloatLoop(true); // decay_1d: the 1-D spans a and c decay too
    }

    private static void float32VectorPathIsBitIdenticalToScalarFloatLoop(boolean decay1d) {
        int n = 10_007;
        List<ParamSpan> spans = List.of(new ParamSpan("a", 0, 3, new long[] {3}),
                new ParamSpan("b", 3, 5001, new long[] {3, 1667}), new ParamSpan("c", 5004, 17, new long[] {17}),
                new ParamSpan("d", 5021, n - 5021, new long[] {2, (n - 5021) / 2}));
        SplittableRandom rnd = new SplittableRandom(9);
        float[] p = new float[n];
        float[] g = new float[n];
        for (int i = 0; i < n; i++) {
            p[i] = (float) rnd.nextDouble(-1, 1);
            g[i] = (float) rnd.nextDouble(-1, 1);
        }
        INDArray p32 = Nd4j.createFromArray(p.clone());
        INDArray g32 = Nd4j.createFromArray(g);
        AdamWConfig cfg = new AdamWConfig(0.9, 0.95, 1e-8, 0.1, decay1d);
        AdamW opt = new AdamW(p32, g32, spans, cfg);
        float[] m = new float[n];
        float[] v = new float[n];
        for (long t = 1; t <= 3; t++) {
            opt.step(t, 1e-3, 0.5);
            float b1 = 0.9f;
            float b2 = 0.95f;
            float stepSize = (float) (1e-3 / (1.0 - Math.pow(0.9, t)));
            float invSqrtBc2 = (float) (1.0 / Math.sqrt(1.0 - Math.pow(0.95, t)));
            for (ParamSpan s : spans) {
                float decay = decay1d || s.shape().length >= 2 ? (float) (1.0 - 1e-3 * 0.1) : 1f;
                for (int i = (int) s.offset(); i < s.offset() + s.numel(); i++) {
                    float gi = g[i] * 0.5f;
                    m[i] = b1 * m[i] + (1f - b1) * gi;
                    v[i] = b2 * v[i] + (1f - b2) * gi * gi;
                    p[i] = p[i] * decay - stepSize * m[i] / ((float) Math.sqrt(v[i]) * invSqrtBc2 + 1e-8f);
                }
            }
        }
        org.junit.jupiter.api.Assertions.assertArrayEquals(p, p32.toFloatVector());
    }
}
