package dev.tessera.optimizers;

import java.util.List;

/** ALGORITHMS.md §2's update, transcribed line by line over plain double arrays (test oracle). */
final class ReferenceCAME {

    private final List<ReferenceTensor> tensors;
    private final CAMEConfig cfg;
    private final ReferenceSecondMoment[] secondMoment;
    private final double[][][] rInst; // [tensor][batch][rows]
    private final double[][][] cInst; // [tensor][batch][cols]
    private final double[][][][] m;

    ReferenceCAME(List<ReferenceTensor> tensors, CAMEConfig cfg) {
        this.tensors = tensors;
        this.cfg = cfg;
        int n = tensors.size();
        secondMoment = new ReferenceSecondMoment[n];
        rInst = new double[n][][];
        cInst = new double[n][][];
        m = new double[n][][][];
        for (int k = 0; k < n; k++) {
            ReferenceTensor x = tensors.get(k);
            secondMoment[k] = new ReferenceSecondMoment(x);
            rInst[k] = new double[x.batch][x.rows];
            cInst[k] = new double[x.batch][x.cols];
            m[k] = x.zeros();
        }
    }

    void step(double[][][][] p, double[][][][] g, double lr) {
        double b1 = cfg.beta1();
        double b2 = cfg.beta2();
        double b3 = cfg.beta3();
        for (int k = 0; k < tensors.size(); k++) {
            ReferenceTensor x = tensors.get(k);
            double[][][] u = new double[x.batch][][];
            for (int b = 0; b < x.batch; b++) {
                u[b] = secondMoment[k].normalise(b, g[k][b], b2, cfg.eps1());
            }
            double clip = Math.max(1, ReferenceTensor.rms(u) / cfg.clipThreshold());
            // The official code decays every parameter; Tessera's default (decay1d false) only the factored matrices.
            double wd = x.factored || cfg.decay1d() ? cfg.weightDecay() : 0.0;
            for (int b = 0; b < x.batch; b++) {
                double[][] inst = new double[x.rows][x.cols];
                for (int i = 0; i < x.rows; i++) {
                    for (int j = 0; j < x.cols; j++) {
                        double uHat = u[b][i][j] / clip;
                        m[k][b][i][j] = b1 * m[k][b][i][j] + (1 - b1) * uHat;
                        double d = uHat - m[k][b][i][j];
                        inst[i][j] = d * d + cfg.eps2();
                    }
                }
                double[][] s = null;
                if (x.factored) {
                    ReferenceTensor.ema(rInst[k][b], ReferenceTensor.meanR(inst), b3);
                    ReferenceTensor.ema(cInst[k][b], ReferenceTensor.meanC(inst), b3);
                    s = ReferenceTensor.factoredEstimate(rInst[k][b], cInst[k][b]);
                }
                for (int i = 0; i < x.rows; i++) {
                    for (int j = 0; j < x.cols; j++) {
                        double stepDir = s == null ? m[k][b][i][j] : m[k][b][i][j] / Math.sqrt(s[i][j]);
                        // As came_pytorch: p.add_(p, alpha=-wd*lr), then p.add_(-(step_dir * lr)).
                        p[k][b][i][j] = p[k][b][i][j] - lr * wd * p[k][b][i][j] - lr * stepDir;
                    }
                }
            }
        }
    }
}
