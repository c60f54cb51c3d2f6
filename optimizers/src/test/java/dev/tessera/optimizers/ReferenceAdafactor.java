package dev.tessera.optimizers;

import java.util.List;

/** ALGORITHMS.md §1's update, transcribed line by line over plain double arrays (test oracle). */
final class ReferenceAdafactor {

    private final List<ReferenceTensor> tensors;
    private final AdafactorConfig cfg;
    private final double[][][] r;   // [tensor][batch][rows]
    private final double[][][] c;   // [tensor][batch][cols]
    private final double[][] v;     // [tensor][numel] (1-D tensors)
    private final double[][][][] m; // [tensor][batch][rows][cols]
    private long t;

    ReferenceAdafactor(List<ReferenceTensor> tensors, AdafactorConfig cfg) {
        this.tensors = tensors;
        this.cfg = cfg;
        int n = tensors.size();
        r = new double[n][][];
        c = new double[n][][];
        v = new double[n][];
        m = new double[n][][][];
        for (int k = 0; k < n; k++) {
            ReferenceTensor x = tensors.get(k);
            r[k] = new double[x.batch][x.rows];
            c[k] = new double[x.batch][x.cols];
            v[k] = new double[x.cols];
            m[k] = x.zeros();
        }
    }

    /** One step on tensors {@code p[k]} with gradients {@code g[k]}; {@code decays[k]} as ParamSpan.decays(). */
    void step(double[][][][] p, double[][][][] g, double lrExt) {
        t += 1;
        double rho = cfg.relativeStep() ? Math.min(cfg.warmupInit() ? 1e-6 * t : 1e-2, 1 / Math.sqrt(t)) : lrExt;
        double b2 = 1 - Math.pow(t, cfg.decayRate());
        for (int k = 0; k < tensors.size(); k++) {
            ReferenceTensor x = tensors.get(k);
            double scale = cfg.scaleParameter() ? Math.max(cfg.eps2(), ReferenceTensor.rms(p[k])) : 1.0;
            double alpha = scale * rho;
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
                for (int i = 0; i < x.rows; i++) {
                    for (int j = 0; j < x.cols; j++) {
                        double update = alpha * (u[b][i][j] / clip);
                        if (cfg.beta1().isPresent()) {
                            double beta1 = cfg.beta1().getAsDouble();
                            m[k][b][i][j] = beta1 * m[k][b][i][j] + (1 - beta1) * update;
                            update = m[k][b][i][j];
                        }
                        p[k][b][i][j] = p[k][b][i][j] - wd * alpha * p[k][b][i][j] - update;
                    }
                }
            }
        }
    }
}
