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
        Map<String, StateSlice> state = opt.state();
        double[] m1 = state.get("came.t0.exp_avg").data().dup().toDoubleVector();
        double[] v1 = state.get("came.t1.exp_avg").data().dup().toDoubleVector();
        double[] p1 = model.params();
        model.setGrads(new double[model.numel]);
        opt.step(2, 1e-3, 1.0);
        double[] m2 = state.get("came.t0.exp_avg").data().toDoubleVector();
        double[] v2 = state.get("came.t1.exp_avg").data().toDoubleVector();
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
            OptimizerChecks.assertMatchesReference(model, new CAME(model.params, model.grads, model.spans, cfg),
                    new ReferenceCAME(model.tensors, cfg)::step, 23, t -> 1e-3 * t, t -> 1.5 - 0.2 * t,
                    cfg.toString());
        }
    }

    /**
     * With decay_1d every parameter is decayed as the official CAME code does (p.add_(p, alpha=-wd*lr) before
     * the update), so a long trajectory with weight decay and 1-D tensors matches the reference to round-off.
     */
    @Test
    void withDecay1dMatchesOfficialWeightDecayOnEveryTensorOverAGoldenTrajectory() {
        List<CAMEConfig> configs = List.of(new CAMEConfig(0.9, 0.999, 0.9999, 1e-30, 1e-16, 1.0, 0.1, true),
                new CAMEConfig(0.8, 0.9, 0.99, 1e-30, 1e-16, 0.3, 0.5, true));
        for (CAMEConfig cfg : configs) {
            FlatModel model = new FlatModel(DataType.DOUBLE, new long[] {3, 5}, new long[] {2, 3, 4},
                    new long[] {4}, new long[] {6, 1}, new long[] {9}, new long[] {});
            OptimizerChecks.assertMatchesReference(model, new CAME(model.params, model.grads, model.spans, cfg),
                    new ReferenceCAME(model.tensors, cfg)::step, 29, t -> 1e-3 * (1 + Math.cos(t / 40.0)),
                    t -> 1.5 - 0.005 * t, cfg.toString(), 200);
        }
    }

    @Test
    void float32AgreesWithFloat64() {
        CAMEConfig cfg = new CAMEConfig(0.9, 0.999, 0.9999, 1e-30, 1e-16, 1.0, 0.1);
        OptimizerChecks.assertFloat32AgreesWithFloat64(m -> new CAME(m.params, m.grads, m.spans, cfg), 1e-3, 6);
    }

    @Test
    void stateRoundTripContinuesBitIdentically() {
        List<String> names = OptimizerChecks.assertStateRoundTripIsBitIdentical(CAMETest::came, 1e-3);
        assertEquals(List.of("came.t0.exp_avg", "came.t0.exp_avg_sq_row", "came.t0.exp_avg_sq_col",
                "came.t0.exp_avg_res_row", "came.t0.exp_avg_res_col", "came.t1.exp_avg", "came.t1.exp_avg_sq"), names);
    }

    @Test
    void stateBytesCountMomentumTwoFactoredStatisticsAndVectors() {
        FlatModel model = new FlatModel(DataType.FLOAT, new long[] {3, 5}, new long[] {2, 3, 4}, new long[] {7});
        long momentum = 15 + 24 + 7;
        long factored = (3 + 5) + (2 * 3 + 2 * 4);
        assertEquals(4 * (momentum + 2 * factored + 7), came(model).stateBytes());
    }
}
