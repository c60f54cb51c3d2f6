package dev.tessera.optimizers;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;
import java.util.function.LongToDoubleFunction;
import org.nd4j.linalg.api.buffer.DataType;

/** Checks that Adafactor and CAME share: reference agreement, fp32 vs fp64, state round trip. */
final class OptimizerChecks {

    /** One step of a plain-array reference optimizer. */
    interface ReferenceStep {
        void step(double[][][][] params, double[][][][] grads, double lr);
    }

    private OptimizerChecks() {
    }

    /**
     * Five steps on random params and gradients, each with its own lr and gradScale, compared element by element
     * with the reference (fed the already-scaled gradient) to 1e-14 relative.
     */
    static void assertMatchesReference(FlatModel model, Optimizer optimizer, ReferenceStep reference, long seed,
                                       LongToDoubleFunction lr, LongToDoubleFunction gradScale, String label) {
        assertMatchesReference(model, optimizer, reference, seed, lr, gradScale, label, 5);
    }

    /** As above over {@code steps} steps (a golden trajectory). */
    static void assertMatchesReference(FlatModel model, Optimizer optimizer, ReferenceStep reference, long seed,
                                       LongToDoubleFunction lr, LongToDoubleFunction gradScale, String label,
                                       int steps) {
        SplittableRandom rnd = new SplittableRandom(seed);
        double[] p0 = FlatModel.random(rnd, model.numel, 1);
        model.setParams(p0);
        double[][][][] p = model.split(p0);
        for (long t = 1; t <= steps; t++) {
            double[] g = FlatModel.random(rnd, model.numel, 2);
            double scale = gradScale.applyAsDouble(t);
            model.setGrads(g);
            optimizer.step(t, lr.applyAsDouble(t), scale);
            double[] scaled = g.clone();
            for (int i = 0; i < scaled.length; i++) {
                scaled[i] *= scale;
            }
            reference.step(p, model.split(scaled), lr.applyAsDouble(t));
            double[] expected = model.join(p);
            double[] actual = model.params();
            for (int i = 0; i < expected.length; i++) {
                assertEquals(expected[i], actual[i], 1e-14 * Math.max(1, Math.abs(expected[i])),
                        label + ": element " + i + " at step " + t);
            }
        }
    }

    /**
     * {@code steps} steps of {@code oa} over {@code a} and {@code ob} over {@code b} (models of the same shapes), from
     * the same random parameters and with the same random gradients each step.
     */
    static void stepTogether(FlatModel a, Optimizer oa, FlatModel b, Optimizer ob, long seed, int steps, double lr,
                             double gradScale) {
        SplittableRandom rnd = new SplittableRandom(seed);
        double[] p0 = FlatModel.random(rnd, a.numel, 1);
        a.setParams(p0);
        b.setParams(p0);
        for (long t = 1; t <= steps; t++) {
            double[] g = FlatModel.random(rnd, a.numel, 1);
            a.setGrads(g);
            b.setGrads(g);
            oa.step(t, lr, gradScale);
            ob.step(t, lr, gradScale);
        }
    }

    /** Five steps in fp32 and fp64 from the same values agree to 1e-6. */
    static void assertFloat32AgreesWithFloat64(Function<FlatModel, Optimizer> create, double lr, long seed) {
        long[][] shapes = {{16, 24}, {3, 8, 5}, {24}};
        FlatModel m64 = new FlatModel(DataType.DOUBLE, shapes);
        FlatModel m32 = new FlatModel(DataType.FLOAT, shapes);
        stepTogether(m64, create.apply(m64), m32, create.apply(m32), seed, 5, lr, 0.5);
        double[] p64 = m64.params();
        double[] p32 = m32.params();
        for (int i = 0; i < p64.length; i++) {
            assertEquals(p64[i], p32[i], 1e-6, "element " + i);
        }
    }

    /**
     * Two steps, then the state copied into a fresh optimizer through {@link Optimizer#state()} (as a checkpoint
     * does): the third step is bit-identical. Returns the state's names, in order.
     */
    static List<String> assertStateRoundTripIsBitIdentical(Function<FlatModel, Optimizer> create, double lr) {
        FlatModel a = new FlatModel(DataType.FLOAT, new long[] {4, 6}, new long[] {6});
        FlatModel b = new FlatModel(DataType.FLOAT, new long[] {4, 6}, new long[] {6});
        Optimizer first = create.apply(a);
        SplittableRandom rnd = new SplittableRandom(8);
        a.setParams(FlatModel.random(rnd, a.numel, 1));
        for (long t = 1; t <= 2; t++) {
            a.setGrads(FlatModel.random(rnd, a.numel, 1));
            first.step(t, lr, 1.0);
        }
        Optimizer second = create.apply(b);
        b.params.assign(a.params);
        first.state().forEach((name, slice) -> second.state().get(name).data().assign(slice.data()));
        double[] g = FlatModel.random(rnd, a.numel, 1);
        a.setGrads(g);
        b.setGrads(g);
        first.step(3, lr, 1.0);
        second.step(3, lr, 1.0);
        assertEquals(a.params, b.params);
        return List.copyOf(first.state().keySet());
    }
}
