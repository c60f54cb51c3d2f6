package dev.tessera.optimizers;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Adafactor against ALGORITHMS.md §1: its oracles, its properties, and a line-by-line reference. */
class AdafactorTest {

    /** External lr, no parameter scaling: the setting of Oracles 2 and 3. */
    private static AdafactorConfig external() {
        AdafactorConfig d = AdafactorConfig.defaults();
        return new AdafactorConfig(d.eps1(), d.eps2(), d.clipThreshold(), d.decayRate(), false, false, false,
                OptionalDouble.empty(), 0.0);
    }

    private static double[] stepOnce(FlatModel model, AdafactorConfig cfg, double[] p0, double[] g, double lr) {
        model.setParams(p0);
        model.setGrads(g);
        new Adafactor(model.params, model.grads, model.spans, cfg).step(1, lr, 1.0);
        return model.params();
    }

    @Test
    void oracle1FirstStepOfAVectorWithDefaults() {
        FlatModel zeros = new FlatModel(DataType.DOUBLE, new long[] {2});
        double[] p1 = stepOnce(zeros, AdafactorConfig.defaults(), new double[] {0, 0}, new double[] {0.5, -2}, 123);
        assertArrayEquals(new double[] {-1e-5, 1e-5}, p1, 1e-20); // alpha = eps2 * 1e-2; lr ignored

        FlatModel ones = new FlatModel(DataType.DOUBLE, new long[] {4});
        double[] q1 = stepOnce(ones, AdafactorConfig.defaults(), new double[] {1, -1, 1, -1},
                new double[] {0.5, -2, 0, 1e-3}, 123);
        assertArrayEquals(new double[] {0.99, -0.99, 1.0, -1.01}, q1, 1e-15);
    }

    @Test
    void oracle2RankOneSquaredGradientIsFactoredExactly() {
        double[] a = {1, 2, 3};
        double[] b = {.5, 1, 4, 2};
        double[] g = new double[12];
        SplittableRandom signs = new SplittableRandom(5);
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 4; j++) {
                g[i * 4 + j] = (signs.nextBoolean() ? 1 : -1) * Math.sqrt(a[i] * b[j]);
            }
        }
        double[] p0 = new double[12];
        double[] factored = stepOnce(new FlatModel(DataType.DOUBLE, new long[] {3, 4}), external(), p0, g, 1e-2);
        double[] full = stepOnce(new FlatModel(DataType.DOUBLE, new long[] {12}), external(), p0, g, 1e-2);
        for (int k = 0; k < 12; k++) {
            assertEquals(-1e-2 * Math.signum(g[k]), factored[k], 1e-17, "entry " + k);
            assertEquals(full[k], factored[k], 1e-17, "entry " + k);
        }
        // n == 1 and m == 1: the factored estimate is the unfactored one.
        double[] row = {0.3, -1.7, 2.2, 0.01};
        double[] flat = stepOnce(new FlatModel(DataType.DOUBLE, new long[] {4}), external(), new double[4], row, 1e-2);
        assertArrayEquals(flat, stepOnce(new FlatModel(DataType.DOUBLE, new long[] {1, 4}), external(), new double[4],
                row, 1e-2), 1e-17);
        assertArrayEquals(flat, stepOnce(new FlatModel(DataType.DOUBLE, new long[] {4, 1}), external(), new double[4],
                row, 1e-2), 1e-17);
    }

    @Test
    void rankOneStaysExactOverStepsWhenOnlyTheScaleOfTheGradientChanges() {
        double[] g = {1, -2, 0.5, 3, -6, 1.5}; // rows proportional: G^2 = a b^T with a = [1, 9]
        FlatModel factored = new FlatModel(DataType.DOUBLE, new long[] {2, 3});
        FlatModel full = new FlatModel(DataType.DOUBLE, new long[] {6});
        Adafactor f = new Adafactor(factored.params, factored.grads, factored.spans, external());
        Adafactor u = new Adafactor(full.params, full.grads, full.spans, external());
        factored.setGrads(g);
        full.setGrads(g);
        for (long t = 1; t <= 4; t++) {
            f.step(t, 1e-2, t); // gradScale varies the magnitude, not the rank
            u.step(t, 1e-2, t);
            assertArrayEquals(full.params(), factored.params(), 1e-16, "step " + t);
        }
    }

    @Test
    void oracle3UpdateClippingAtStep2() {
        FlatModel model = new FlatModel(DataType.DOUBLE, new long[] {2});
        Adafactor opt = new Adafactor(model.params, model.grads, model.spans, external());
        model.setGrads(new double[] {1, 1});
        opt.step(1, 1.0, 1.0);
        assertArrayEquals(new double[] {-1, -1}, model.params(), 1e-15);
        model.setGrads(new double[] {10, 1});
        opt.step(2, 1.0, 1.0);
        assertArrayEquals(new double[] {-2.125585, -1.856189}, model.params(), 5e-7);
        assertEquals(57.86057, opt.state().get("adafactor.t0.exp_avg_sq").data().getDouble(0), 5e-6);
    }

    @Test
    void oracle4ZeroGradientLeavesParamsBitIdentical() {
        for (DataType dtype : List.of(DataType.DOUBLE, DataType.FLOAT)) {
            FlatModel model = new FlatModel(dtype, new long[] {3, 4}, new long[] {2, 2, 3}, new long[] {5});
            Adafactor opt = new Adafactor(model.params, model.grads, model.spans, AdafactorConfig.defaults());
            SplittableRandom rnd = new SplittableRandom(11);
            model.setParams(FlatModel.random(rnd, model.numel, 1));
            model.setGrads(FlatModel.random(rnd, model.numel, 1));
            opt.step(1, 0, 1.0);
            INDArray before = model.params.dup();
            model.setGrads(new double[model.numel]);
            opt.step(2, 0, 1.0);
            opt.step(3, 0, 1.0);
            assertEquals(before, model.params, dtype + ": params moved under a zero gradient");
        }
    }

    @Test
    void oracle4MeanOfRowStatsEqualsMeanOfColumnStats() {
        FlatModel model = new FlatModel(DataType.DOUBLE, new long[] {5, 7});
        Adafactor opt = new Adafactor(model.params, model.grads, model.spans, AdafactorConfig.defaults());
        SplittableRandom rnd = new SplittableRandom(2);
        Map<String, StateSlice> state = opt.state();
        for (long t = 1; t <= 6; t++) {
            model.setGrads(FlatModel.random(rnd, model.numel, 3));
            opt.step(t, 0, 1.0);
            double meanR = state.get("adafactor.t0.exp_avg_sq_row").data().meanNumber().doubleValue();
            double meanC = state.get("adafactor.t0.exp_avg_sq_col").data().meanNumber().doubleValue();
            assertEquals(meanR, meanC, 1e-14 * meanR, "step " + t);
        }
    }

    @Test
    void leadingDimsAreBatchDims() {
        // Without clipping or parameter scaling, a [2,3,4] tensor updates like two separate [3,4] matrices.
        AdafactorConfig noClip = new AdafactorConfig(1e-30, 1e-3, 1e9, -0.8, false, false, false,
                OptionalDouble.empty(), 0.0);
        FlatModel batched = new FlatModel(DataType.DOUBLE, new long[] {2, 3, 4});
        FlatModel split = new FlatModel(DataType.DOUBLE, new long[] {3, 4}, new long[] {3, 4});
        Adafactor a = new Adafactor(batched.params, batched.grads, batched.spans, noClip);
        Adafactor b = new Adafactor(split.params, split.grads, split.spans, noClip);
        SplittableRandom rnd = new SplittableRandom(9);
        for (long t = 1; t <= 3; t++) {
            double[] g = FlatModel.random(rnd, 24, 1);
            batched.setGrads(g);
            split.setGrads(g);
            a.step(t, 1e-2, 1.0);
            b.step(t, 1e-2, 1.0);
            assertArrayEquals(split.params(), batched.params(), 0.0);
        }
        assertArrayEquals(new long[] {2, 3}, a.state().get("adafactor.t0.exp_avg_sq_row").fullShape());
        assertArrayEquals(new long[] {2, 4}, a.state().get("adafactor.t0.exp_avg_sq_col").fullShape());
    }

    @Test
    void matchesReferenceEquationsStepForStepInFloat64() {
        List<AdafactorConfig> configs = List.of(
                AdafactorConfig.defaults(),
                new AdafactorConfig(1e-30, 1e-3, 1.0, -0.8, true, true, true, OptionalDouble.of(0.9), 0.1),
                new AdafactorConfig(1e-30, 1e-3, 0.5, -0.6, false, true, false, OptionalDouble.of(0.8), 0.01),
                external());
        for (AdafactorConfig cfg : configs) {
            FlatModel model = new FlatModel(DataType.DOUBLE, new long[] {3, 5}, new long[] {2, 3, 4},
                    new long[] {4}, new long[] {1, 6}, new long[] {});
            OptimizerChecks.assertMatchesReference(model, new Adafactor(model.params, model.grads, model.spans, cfg),
                    new ReferenceAdafactor(model.tensors, cfg)::step, 17, t -> 1e-2 / t, t -> 0.5 + 0.25 * t,
                    cfg.toString());
        }
    }

    /**
     * With decay_1d every parameter is decayed as HF's Adafactor does, so a long trajectory with weight decay, norm
     * gains (1-D) and a scalar included, matches the reference to float64 round-off; without it the 1-D tensors
     * would drift by weight_decay * alpha * p per step.
     */
    @Test
    void withDecay1dMatchesHfWeightDecayOnEveryTensorOverAGoldenTrajectory() {
        List<AdafactorConfig> configs = List.of(
                new AdafactorConfig(1e-30, 1e-3, 1.0, -0.8, true, true, false, OptionalDouble.empty(), 0.1, true),
                new AdafactorConfig(1e-30, 1e-3, 1.0, -0.8, true, true, true, OptionalDouble.of(0.9), 0.05, true),
                new AdafactorConfig(1e-30, 1e-3, 0.5, -0.6, false, false, false, OptionalDouble.of(0.8), 0.3, true));
        for (AdafactorConfig cfg : configs) {
            FlatModel model = new FlatModel(DataType.DOUBLE, new long[] {3, 5}, new long[] {2, 3, 4},
                    new long[] {4}, new long[] {1, 6}, new long[] {7}, new long[] {});
            OptimizerChecks.assertMatchesReference(model, new Adafactor(model.params, model.grads, model.spans, cfg),
                    new ReferenceAdafactor(model.tensors, cfg)::step, 31, t -> 1e-2 / Math.sqrt(t),
                    t -> 0.5 + 0.01 * t, cfg.toString(), 200);
        }
    }

    @Test
    void decay1dDecaysANormGainAndIsOffByDefault() {
        AdafactorConfig off = new AdafactorConfig(1e-30, 1e-3, 1.0, -0.8, false, false, false, OptionalDouble.empty(),
                0.5);
        AdafactorConfig on = new AdafactorConfig(1e-30, 1e-3, 1.0, -0.8, false, false, false, OptionalDouble.empty(),
                0.5, true);
        double[] p0 = {1, -2, 4};
        double[] zero = new double[3];
        // A zero gradient makes U = 0, so only weight decay moves p: p - (0.5 * 1e-2) * p.
        assertArrayEquals(p0, stepOnce(new FlatModel(DataType.DOUBLE, new long[] {3}), off, p0, zero, 1e-2));
        assertArrayEquals(new double[] {1 - 0.005, -2 + 0.01, 4 - 0.02},
                stepOnce(new FlatModel(DataType.DOUBLE, new long[] {3}), on, p0, zero, 1e-2), 1e-16);
    }

    @Test
    void float32AgreesWithFloat64() {
        AdafactorConfig cfg = new AdafactorConfig(1e-30, 1e-3, 1.0, -0.8, true, true, false,
                OptionalDouble.of(0.9), 0.1);
        OptimizerChecks.assertFloat32AgreesWithFloat64(m -> new Adafactor(m.params, m.grads, m.spans, cfg), 0, 4);
    }

    @Test
    void stateRoundTripContinuesBitIdentically() {
        AdafactorConfig cfg = new AdafactorConfig(1e-30, 1e-3, 1.0, -0.8, true, true, false,
                OptionalDouble.of(0.9), 0.1);
        List<String> names = OptimizerChecks.assertStateRoundTripIsBitIdentical(
                m -> new Adafactor(m.params, m.grads, m.spans, cfg), 0);
        assertEquals(List.of("adafactor.t0.exp_avg_sq_row", "adafactor.t0.exp_avg_sq_col", "adafactor.t0.exp_avg",
                "adafactor.t1.exp_avg_sq", "adafactor.t1.exp_avg"), names);
    }

    @Test
    void stateBytesCountRowsColumnsVectorsAndMomentum() {
        long[][] shapes = {{3, 5}, {2, 3, 4}, {7}};
        FlatModel m32 = new FlatModel(DataType.FLOAT, shapes);
        long factoredStats = (3 + 5) + (2 * 3 + 2 * 4);
        assertEquals(4 * (factoredStats + 7),
                new Adafactor(m32.params, m32.grads, m32.spans, AdafactorConfig.defaults()).stateBytes());
        FlatModel m64 = new FlatModel(DataType.DOUBLE, shapes);
        AdafactorConfig momentum = new AdafactorConfig(1e-30, 1e-3, 1.0, -0.8, true, true, false,
                OptionalDouble.of(0.9), 0.0);
        assertEquals(8 * (factoredStats + 7 + 15 + 24 + 7),
                new Adafactor(m64.params, m64.grads, m64.spans, momentum).stateBytes());
    }

    @Test
    void warmupInitWithoutRelativeStepIsRejected() {
        FlatModel model = new FlatModel(DataType.FLOAT, new long[] {2});
        AdafactorConfig bad = new AdafactorConfig(1e-30, 1e-3, 1.0, -0.8, false, true, true,
                OptionalDouble.empty(), 0.0);
        assertThrows(IllegalArgumentException.class, () -> new Adafactor(model.params, model.grads, model.spans, bad));
    }
}
