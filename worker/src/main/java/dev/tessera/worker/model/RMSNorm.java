package dev.tessera.worker.model;

import dev.tessera.optimizers.kernel.KernelThreads;
import jdk.incubator.vector.FloatVector;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * y = x / sqrt(mean(x^2) + eps) * g, row by row. One fused pass per row: ND4J's broadcast and row
 * reductions made this 10x slower than PyTorch (STACK.md).
 */
public final class RMSNorm {
    private static final int KERNEL = ModelStepTimer.kernel("rmsnorm");
    /** Row groups of the float32 backward: a fixed count, so dg's summation order never depends on threads. */
    private static final int GROUPS = 8;
    private final Mem g;   // [C]
    private final Mem dg;  // [C]
    private final int dim;
    private final double eps;
    private final double[] rstd; // [N] 1/rms of each row, kept for backward
    private final float[][] dgAcc; // [GROUPS][C] float path: dg of each row group, added in group order

    public RMSNorm(INDArray g, INDArray dg, double eps, int rows) {
        this(g, dg, eps, rows, Activations.own());
    }

    /** @param activations where the per-row statistics kept for backward come from */
    public RMSNorm(INDArray g, INDArray dg, double eps, int rows, Activations activations) {
        this.g = new Mem(g);
        this.dg = new Mem(dg);
        this.dim = (int) g.length();
        this.eps = eps;
        this.rstd = activations.doubles(rows);
        this.dgAcc = new float[GROUPS][dim];
    }

    public RMSNorm(ParameterStore ps, String name, double eps, int rows) {
        this(ps.param(name), ps.grad(name), eps, rows, Activations.own());
    }

    public RMSNorm(ParameterStore ps, String name, double eps, int rows, Activations activations) {
        this(ps.param(name), ps.grad(name), eps, rows, activations);
    }

    /** x: [N, C] -> y: [N, C]. */
    public void forward(INDArray x, INDArray y) {
        Mem xm = new Mem(x);
        Mem ym = new Mem(y);
        int rows = (int) x.size(0);
        long t = ModelStepTimer.startKernel();
        KernelThreads.forRange(rows, (part, from, to) -> forwardRows(xm, ym, from, to, Mem.lanes()));
        ModelStepTimer.stopKernel(KERNEL, t);
    }

    private void forwardRows(Mem xm, Mem ym, int from, int to, float[] lanes) {
        for (int n = from; n < to; n++) {
            int o = n * dim;
            double r = 1.0 / Math.sqrt(Mem.dot(xm, o, xm, o, dim, lanes) / dim + eps);
            rstd[n] = r;
            int i = 0;
            if (xm.f32 && ym.f32 && g.f32) {
                FloatVector vr = FloatVector.broadcast(Mem.S, (float) r);
                for (int b = Mem.S.loopBound(dim); i < b; i += Mem.L) {
                    ym.put(xm.vec(o + i).mul(vr).mul(g.vec(i)), o + i);
                }
            }
            for (; i < dim; i++) {
                ym.set(o + i, xm.get(o + i) * r * g.get(i));
            }
        }
    }

    /**
     * dy: [N, C]. dx (+)= r*g*dy - x * r^3 * sum(g*dy*x) / C; dg += sum over rows of dy*x*r.
     * Uses the rstd saved by the last forward, so x must be that forward's input.
     */
    public void backward(INDArray x, INDArray dy, INDArray dx, boolean accumulate) {
        long t = ModelStepTimer.startKernel();
        backwardRows(x, dy, dx, accumulate);
        ModelStepTimer.stopKernel(KERNEL, t);
    }

    private void backwardRows(INDArray x, INDArray dy, INDArray dx, boolean accumulate) {
        Mem xm = new Mem(x);
        Mem dym = new Mem(dy);
        Mem dxm = new Mem(dx);
        int rows = (int) x.size(0);
        if (xm.f32 && dym.f32 && dxm.f32 && g.f32) {
            KernelThreads.forRange(GROUPS, (part, from, to) -> {
                float[] lanes = Mem.lanes();
                for (int grp = from; grp < to; grp++) {
                    float[] acc = dgAcc[grp];
                    java.util.Arrays.fill(acc, 0f);
                    for (int n = (int) ((long) rows * grp / GROUPS); n < (long) rows * (grp + 1) / GROUPS; n++) {
                        backwardRowF(xm, dym, dxm, n * dim, (float) rstd[n], accumulate, acc, lanes);
                    }
                }
            });
            for (int i = 0; i < dim; i++) {
                float s = dg.getF(i);
                for (float[] acc : dgAcc) {
                    s += acc[i];
                }
                dg.setF(i, s);
            }
            return;
        }
        for (int n = 0; n < rows; n++) {
            int o = n * dim;
            double r = rstd[n];
            double s = 0;
            for (int i = 0; i < dim; i++) {
                s += g.get(i) * dym.get(o + i) * xm.get(o + i);
            }
            double c = r * r * r * s / dim;
            for (int i = 0; i < dim; i++) {
                double xi = xm.get(o + i);
                double v = r * g.get(i) * dym.get(o + i) - xi * c;
                dxm.set(o + i, accumulate ? dxm.get(o + i) + v : v);
                dg.add(i, dym.get(o + i) * xi * r);
            }
        }
    }

    private void backwardRowF(Mem xm, Mem dym, Mem dxm, int o, float r, boolean accumulate, float[] dgAcc,
                              float[] lanes) {
        int b = Mem.S.loopBound(dim);
        FloatVector acc = FloatVector.zero(Mem.S);
        int i = 0;
        for (; i < b; i += Mem.L) {
            acc = g.vec(i).mul(dym.vec(o + i)).fma(xm.vec(o + i), acc);
        }
        acc.intoArray(lanes, 0);
        float s = Mem.sumLanes(lanes);
        for (; i < dim; i++) {
            s += g.getF(i) * dym.getF(o + i) * xm.getF(o + i);
        }
        float c = r * r * r * s / dim;
        FloatVector vr = FloatVector.broadcast(Mem.S, r);
        FloatVector vc = FloatVector.broadcast(Mem.S, -c);
        for (i = 0; i < b; i += Mem.L) {
            FloatVector x = xm.vec(o + i);
            FloatVector dyv = dym.vec(o + i);
            FloatVector v = vr.mul(g.vec(i)).mul(dyv).add(x.mul(vc));
            dxm.put(accumulate ? v.add(dxm.vec(o + i)) : v, o + i);
            FloatVector.fromArray(Mem.S, dgAcc, i).add(dyv.mul(x).mul(vr)).intoArray(dgAcc, i);
        }
        for (; i < dim; i++) {
            float x = xm.getF(o + i);
            float v = r * g.getF(i) * dym.getF(o + i) - x * c;
            dxm.setF(o + i, accumulate ? dxm.getF(o + i) + v : v);
            dgAcc[i] += dym.getF(o + i) * x * r;
        }
    }
}
