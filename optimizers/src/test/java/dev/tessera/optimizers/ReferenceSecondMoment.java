package dev.tessera.optimizers;

/**
 * The second-moment part both references share (ALGORITHMS.md §1 and §2 use the same one): {@code Q = g^2 +
 * eps1}, row/column EMAs for factored tensors or a full EMA otherwise, and {@code u = g / sqrt(Vhat)}.
 */
final class ReferenceSecondMoment {

    private final ReferenceTensor x;
    private final double[][] r; // [batch][rows]
    private final double[][] c; // [batch][cols]
    private final double[] v;   // [numel] (1-D tensors)

    ReferenceSecondMoment(ReferenceTensor x) {
        this.x = x;
        r = new double[x.batch][x.rows];
        c = new double[x.batch][x.cols];
        v = new double[x.cols];
    }

    /** Blends matrix {@code b} of {@code g} in with {@code beta2} and returns {@code g / sqrt(Vhat)}. */
    double[][] normalise(int b, double[][] g, double beta2, double eps1) {
        double[][] q = new double[x.rows][x.cols];
        for (int i = 0; i < x.rows; i++) {
            for (int j = 0; j < x.cols; j++) {
                q[i][j] = g[i][j] * g[i][j] + eps1;
            }
        }
        double[][] vhat;
        if (x.factored) {
            ReferenceTensor.ema(r[b], ReferenceTensor.meanR(q), beta2);
            ReferenceTensor.ema(c[b], ReferenceTensor.meanC(q), beta2);
            vhat = ReferenceTensor.factoredEstimate(r[b], c[b]);
        } else {
            ReferenceTensor.ema(v, q[0], beta2);
            vhat = new double[][] {v};
        }
        double[][] u = new double[x.rows][x.cols];
        for (int i = 0; i < x.rows; i++) {
            for (int j = 0; j < x.cols; j++) {
                u[i][j] = g[i][j] / Math.sqrt(vhat[i][j]);
            }
        }
        return u;
    }
}
