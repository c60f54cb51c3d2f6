package dev.tessera.optimizers;

import java.util.List;

/** ALGORITHMS.md §1's update, transcribed line by line over plain double arrays (test oracle). */
final class ReferenceAdafactor {

    private final List<ReferenceTensor> tensors;
    private final AdafactorConfig cfg;
    private final ReferenceSecondMoment[] secondMoment;
    private final double[][][][] m; // [tensor][batch][rows][cols]
    private long t;

    ReferenceAdafactor(List<ReferenceTensor> tensors, AdafactorConfig cfg) {
        this.tensors = tensors;
        this.cfg = cfg;
        int n = tensors.size();
        secondMoment = new ReferenceSecondMoment[n];
        m = new double[n][][][];
        for (int k = 0; k < n; k++) {
            secondMoment[k] = new ReferenceSecondMoment(tensors.get(k));
            m[k] = tensors.get(k).zeros();
        }
    }

    /**
     * One step on tensors {@code p[k]} with gradients {@code g[k]}. Weight decay is HF's: after the update U is
     * scaled, clipped and (with beta1) averaged, {@code p += (-weight_decay * alpha) * p}, then {@code p -= U}, with
     * alpha from RMS(p) before this step.
     */
    void step(double[][][][] p, double[][][][] g, double lrExt) {
        t += 1;
        double rho = cfg.relativeStep() ? Math.min(cfg.warmupInit() ? 1e-6 * t : 1e-2, 1 / Math.sqrt(t)) : lrExt;
        double b2 = 1 - Math.pow(t, cfg.decayRate());
        for (int k = 0; k < tensors.size(); k++) {
            ReferenceTensor x = tensors.get(k);
            double scale = cfg.scaleParameter() ? Math.max(cfg.eps2(), ReferenceTensor.rms(p[k])) : 1.0;
            double alpha = scale * rho;
            double[][][] u = new double[x.batch][][];
            for (int b = 0; b < x.batch; b++) {
                u[b] = secondMoment[k].normalise(b, g[k][b], b2, cfg.eps1());
            }
            double clip = Math.max(1, ReferenceTensor.rms(u) / cfg.clipThreshold());
            // HF decays every parameter; Tessera's default (decay1d false) only matrices, which are the factored ones.
            double wd = x.factored || cfg.decay1d() ? cfg.weightDecay() : 0.0;
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
