package dev.tessera.optimizers;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** CAME against ALGORITHMS.md §2: its oracles, its properties, and a line-by-line reference. */
class CAMETest {

    private static final double[] ORACLE3_G = {1, -2, 0.5, 0.1, 0.3, -4};

    private static CAME came(FlatModel model) {
        return new CAME(model.params, model.grads, model.spans, CAMEConfig.defaults());
    }

    @Test
    void oracle1VectorFirstStepIsATenthOfLrTimesSign() {
        FlatModel model = new FlatModel(DataType.DOUBLE, new long[] {4});
        model.setGrads(new double[] {.5, -2, 1, -.1});
        came(model).step(1, 1e-3, 1.0);
        assertArrayEquals(new double[] {-1e-4, 1e-4, -1e-4, 1e-4}, model.params(), 1e-18);
    }

    @Test
    void oracle2MatrixWithConstantMagnitudeStepsElevenPointOneLr() {
        FlatModel model = new FlatModel(DataType.DOUBLE, new long[] {2, 3});
        double[] g = {.5, -.5, .5, -.5, .5, .5};
        model.setGrads(g);
        came(model).step(1, 1e-3, 1.0);
        double[] p1 = model.params();
        for (int k = 0; k < 6; k++) {
            assertEquals(-0.011111 * Math.signum(g[k]), p1[k], 5e-7, "entry " + k);
            assertEquals(-Math.signum(g[k]) / 90, p1[k], 1e-15, "entry " + k); // 1e-3 * 0.1 / 0.009 exactly
        }
    }

    @Test
    void oracle3And4MatrixGeneralFirstAndSecondStep() {
        FlatModel model = new FlatModel(DataType.DOUBLE, new long[] {2, 3});
        CAME opt = came(model);
        model.setGrads(ORACLE3_G);
        opt.step(1, 1e-3, 1.0);
        assertArrayEquals(new double[] {-0.011984, 0.011960, -0.002567, -0.001674, -0.002506, 0.028684},
                model.params(), 5e-7);
        opt.step(2, 1e-3, 1.0);
        assertArrayEquals(new double[] {-0.028909, 0.028851, -0.006192, -0.004038, -0.006045, 0.069194},
                model.params(), 5e-7);
    }

    @Test
    void oracle3HoldsInFloat32Too() {
        FlatModel model = new FlatModel(DataType.FLOAT, new long[] {2, 3});
        CAME opt = came(model);
        model.setGrads(ORACLE3_G);
        opt.step(1, 1e-3, 1.0);
        opt.step(2, 1e-3, 1.0);
        assertArrayEquals(new double[] {-0.028909, 0.028851, -0.006192, -0.004038, -0.006045, 0.069194},
                model.params(), 1e-6);
    }

    @Test
    void zeroGradientDecaysMomentumAndKeepsMovingWithoutNaN() {
        FlatModel model = new FlatModel(DataType.DOUBLE, new long[] {2, 3}, new long[] {3});
        CAME opt = came(model);
        SplittableRandom rnd = new SplittableRandom(3);
        model.setGrads(FlatModel.random(rnd, model.numel, 1));
        opt.step(1, 1e-3, 1.0);
        Map<String, INDArray> state = opt.state();
        double[] m1 = state.get("came.t0.exp_avg").dup().ravel().toDoubleVector();
        double[] v1 = state.get("came.t1.exp_avg").dup().toDoubleVector();
        double[] p1 = model.params();
        model.setGrads(new double[model.numel]);
        opt.step(2, 1e-3, 1.0);
        double[] m2 = state.get("came.t0.exp_avg").ravel().toDoubleVector();
        double[] v2 = state.get("came.t1.exp_avg").toDoubleVector();
        for (int k = 0; k < m1.length; k++) {
            assertEquals(0.9 * m1[k], m2[k], 1e-18, "matrix momentum " + k);
        }
        for (int k = 0; k < v1.length; k++) {
            assertEquals(0.9 * v1[k], v2[k], 1e-18, "vector momentum " + k);
        }
        double[] p2 = model.params();
        for (int k = 0; k < p2.length; k++) {
            assertTrue(Double.isFinite(p2[k]), "param " + k);
            assertNotEquals(p1[k], p2[k], "momentum carries param " + k + " on");
        }
        // 1-D: the step is exactly lr * m, with no confidence scaling.
        for (int k = 0; k < 3; k++) {
            assertEquals(p1[6 + k] - 1e-3 * v2[k], p2[6 + k], 1e-18);
        }
    }

    @Test
    void matchesReferenceEquationsStepForStepInFloat64() {
        List<CAMEConfig> configs = List.of(CAMEConfig.defaults(),
                new CAMEConfig(0.9, 0.95, 0.995, 1e-30, 1e-16, 1.0, 0.01),
                new CAMEConfig(0.8, 0.9, 0.99, 1e-30, 1e-16, 0.3, 0.1));
        for (CAMEConfig cfg : configs) {
            FlatModel model = new FlatModel(DataType.DOUBLE, new long[] {3, 5}, new long[] {2, 3, 4},
                    new long[] {4}, new long[] {6, 1}, new long[] {});
            CAME opt = new CAME(model.params, model.grads, model.spans, cfg);
            ReferenceCAME ref = new ReferenceCAME(model.tensors, cfg);
            SplittableRandom rnd = new SplittableRandom(23);
            double[] p0 = FlatModel.random(rnd, model.numel, 1);
            model.setParams(p0);
            double[][][][] p = model.split(p0);
            for (long t = 1; t <= 5; t++) {
                double[] g = FlatModel.random(rnd, model.numel, 2);
                double gradScale = 1.5 - 0.2 * t;
                double lr = 1e-3 * t;
                model.setGrads(g);
                opt.step(t, lr, gradScale);
                double[] scaled = g.clone();
                for (int i = 0; i < scaled.length; i++) {
                    scaled[i] *= gradScale;
                }
                ref.step(p, model.split(scaled), lr);
                double[] expected = model.join(p);
                double[] actual = model.params();
                for (int i = 0; i < expected.length; i++) {
                    assertEquals(expected[i], actual[i], 1e-14 * Math.max(1, Math.abs(expected[i])),
                            cfg + ": element " + i + " at step " + t);
                }
            }
        }
    }

    @Test
    void float32AgreesWithFloat64() {
        long[][] shapes = {{16, 24}, {3, 8, 5}, {24}};
        FlatModel m64 = new FlatModel(DataType.DOUBLE, shapes);
        FlatModel m32 = new FlatModel(DataType.FLOAT, shapes);
        CAMEConfig cfg = new CAMEConfig(0.9, 0.999, 0.9999, 1e-30, 1e-16, 1.0, 0.1);
        CAME a64 = new CAME(m64.params, m64.grads, m64.spans, cfg);
        CAME a32 = new CAME(m32.params, m32.grads, m32.spans, cfg);
        SplittableRandom rnd = new SplittableRandom(6);
        double[] p0 = FlatModel.random(rnd, m64.numel, 1);
        m64.setParams(p0);
        m32.setParams(p0);
        for (long t = 1; t <= 5; t++) {
            double[] g = FlatModel.random(rnd, m64.numel, 1);
            m64.setGrads(g);
            m32.setGrads(g);
            a64.step(t, 1e-3, 0.5);
            a32.step(t, 1e-3, 0.5);
        }
        double[] p64 = m64.params();
        double[] p32 = m32.params();
        for (int i = 0; i < p64.length; i++) {
            assertEquals(p64[i], p32[i], 1e-6, "element " + i);
        }
    }

    @Test
    void stateRoundTripContinuesBitIdentically() {
        FlatModel a = new FlatModel(DataType.FLOAT, new long[] {4, 6}, new long[] {6});
        FlatModel b = new FlatModel(DataType.FLOAT, new long[] {4, 6}, new long[] {6});
        CAME first = came(a);
        SplittableRandom rnd = new SplittableRandom(8);
        a.setParams(FlatModel.random(rnd, a.numel, 1));
        for (long t = 1; t <= 2; t++) {
            a.setGrads(FlatModel.random(rnd, a.numel, 1));
            first.step(t, 1e-3, 1.0);
        }
        CAME second = came(b);
        b.params.assign(a.params);
        first.state().forEach((name, tensor) -> second.state().get(name).assign(tensor));
        double[] g = FlatModel.random(rnd, a.numel, 1);
        a.setGrads(g);
        b.setGrads(g);
        first.step(3, 1e-3, 1.0);
        second.step(3, 1e-3, 1.0);
        assertEquals(a.params, b.params);
        assertEquals(List.of("came.t0.exp_avg", "came.t0.exp_avg_sq_row", "came.t0.exp_avg_sq_col",
                "came.t0.exp_avg_res_row", "came.t0.exp_avg_res_col", "came.t1.exp_avg", "came.t1.exp_avg_sq"),
                List.copyOf(first.state().keySet()));
    }

    @Test
    void stateBytesCountMomentumTwoFactoredStatisticsAndVectors() {
        FlatModel model = new FlatModel(DataType.FLOAT, new long[] {3, 5}, new long[] {2, 3, 4}, new long[] {7});
        long momentum = 15 + 24 + 7;
        long factored = (3 + 5) + (2 * 3 + 2 * 4);
        assertEquals(4 * (momentum + 2 * factored + 7), came(model).stateBytes());
    }
}
