package dev.tessera.worker.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Central-difference gradient checks in float64 with a per-tensor relative error. */
final class GradCheck {
    static final double H = 1e-6;
    static final double TOL = 1e-6;

    private GradCheck() {
    }

    static INDArray randn(SplittableRandom rng, double std, long... shape) {
        INDArray a = Nd4j.create(DataType.DOUBLE, shape);
        fill(a, rng, 0, std);
        return a;
    }

    static void fill(INDArray a, SplittableRandom rng, double mean, double std) {
        Mem m = new Mem(a);
        for (int i = 0; i < a.length(); i++) {
            m.set(i, mean + std * rng.nextGaussian());
        }
    }

    static double[] values(INDArray a) {
        Mem m = new Mem(a);
        double[] v = new double[(int) a.length()];
        for (int i = 0; i < v.length; i++) {
            v[i] = m.get(i);
        }
        return v;
    }

    /** sum(r * out): a scalar loss whose gradient wrt out is r. */
    static double dotLoss(INDArray out, INDArray r) {
        return Mem.dot(new Mem(out), 0, new Mem(r), 0, (int) out.length(), Mem.lanes());
    }

    /** d loss / d x by central differences, perturbing every element of x in place. */
    static double[] numeric(INDArray x, DoubleSupplier loss) {
        Mem m = new Mem(x);
        double[] g = new double[(int) x.length()];
        for (int i = 0; i < g.length; i++) {
            double v = m.get(i);
            m.set(i, v + H);
            double plus = loss.getAsDouble();
            m.set(i, v - H);
            double minus = loss.getAsDouble();
            m.set(i, v);
            g[i] = (plus - minus) / (2 * H);
        }
        return g;
    }

    static double relErr(double[] a, double[] n) {
        double d = 0;
        double na = 0;
        double nn = 0;
        for (int i = 0; i < a.length; i++) {
            d += (a[i] - n[i]) * (a[i] - n[i]);
            na += a[i] * a[i];
            nn += n[i] * n[i];
        }
        return Math.sqrt(d) / Math.max(Math.max(Math.sqrt(na), Math.sqrt(nn)), 1e-12);
    }

    /** Asserts the analytic gradient (a snapshot taken before numeric() ran) matches the numeric one. */
    static void check(String name, double[] analytic, double[] numeric) {
        double err = relErr(analytic, numeric);
        double norm = Math.sqrt(java.util.Arrays.stream(analytic).map(v -> v * v).sum());
        System.out.printf("gradcheck %-55s rel.err %.2e  |grad| %.3e%n", name, err, norm);
        assertTrue(norm > 1e-8, name + ": analytic gradient is zero, the check would prove nothing");
        assertTrue(err <= TOL, name + ": relative error " + err + " > " + TOL + " (|grad| = " + norm + ")");
    }
}
