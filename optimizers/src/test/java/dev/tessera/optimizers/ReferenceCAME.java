package dev.tessera.optimizers;

import java.util.List;

/** ALGORITHMS.md §2's update, transcribed line by line over plain double arrays (test oracle). */
final class ReferenceCAME {

    private final List<ReferenceTensor> tensors;
    private final CAMEConfig cfg;
    private final double[][][] r;
    private final double[][][] c;
    private final double[][][] rInst;
    private final double[][][] cInst;
    private final double[][] v;
    private final double[][][][] m;

    ReferenceCAME(List<ReferenceTensor> tensors, CAMEConfig cfg) {
        this.tensors = tensors;
        this.cfg = cfg;
        int n = tensors.size();
        r = new double[n][][];
        c = new double[n][][];
        rInst = new double[n][][];
        cInst = new double[n][][];
        v = new double[n][];
        m = new double[n][][][];
        for (int k = 0; k < n; k++) {
            ReferenceTensor x = tensors.get(k);
            r[k] = new double[x.batch][x.rows];
            c[k] = new double[x.batch][x.cols];
            rInst[k] = new double[x.batch][x.rows];
            cInst[k] = new double[x.batch][x.cols];
            v[k] = new double[x.cols];
            m[k] = x.zeros();
        }
    }

    void step(double[][][][] p, double[][][][] g, double lr) {
        double b1 = cfg.beta1();
        double b2 = cfg.beta2();
        double b3 = cfg.beta3();
        for (int k = 0; k < tensors.size(); k++) {
            ReferenceTensor x = tensors.get(k);
            double[][][] u = x.zeros();
            for (int b = 0; b < x.batch; b++) {
                double[][] q = new double[x.rows][x.cols];
                for (int i = 0; i < x.rows; i++) {
                    for (int j = 0; j < x.cols; j++) {
                        q[i][j] = g[k][b][i][j] * g[k][b][i][j] + cfg.eps1();
                    }
                }
                double[][] vhat;
                if (x.factored) {
                    ReferenceTensor.ema(r[k][b], ReferenceTensor.meanR(q), b2);
                    ReferenceTensor.ema(c[k][b], ReferenceTensor.meanC(q), b2);
                    vhat = ReferenceTensor.factoredEstimate(r[k][b], c[k][b]);
                } else {
                    ReferenceTensor.ema(v[k], q[0], b2);
                    vhat = new double[][] {v[k]};
                }
                for (int i = 0; i < x.rows; i++) {
                    for (int j = 0; j < x.cols; j++) {
                        u[b][i][j] = g[k][b][i][j] / Math.sqrt(vhat[i][j]);
                    }
                }
            }
            double clip = Math.max(1, ReferenceTensor.rms(u) / cfg.clipThreshold());
            double wd = x.factored ? cfg.weightDecay() : 0.0;
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
                        p[k][b][i][j] = p[k][b][i][j] - lr * wd * p[k][b][i][j] - lr * stepDir;
                    }
                }
            }
        }
    }
}
