package dev.tessera.optimizers;

/**
 * One tensor for the plain-array reference optimizers: values as {@code [batch][rows][cols]} (a 1-D tensor is
 * one row), written from the equations of ALGORITHMS.md with no shared code from the optimizers under test.
 */
final class ReferenceTensor {

    final long[] shape;
    final boolean factored;
    final int batch;
    final int rows;
    final int cols;

    ReferenceTensor(long[] shape) {
        this.shape = shape;
        this.factored = shape.length >= 2;
        int numel = 1;
        for (long d : shape) {
            numel *= (int) d;
        }
        this.rows = factored ? (int) shape[shape.length - 2] : 1;
        this.cols = factored ? (int) shape[shape.length - 1] : numel;
        this.batch = numel / (rows * cols);
    }

    int numel() {
        return batch * rows * cols;
    }

    double[][][] zeros() {
        return new double[batch][rows][cols];
    }

    double[][][] unflatten(double[] flat, int offset) {
        double[][][] x = zeros();
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < cols; j++) {
                    x[b][i][j] = flat[offset + (b * rows + i) * cols + j];
                }
            }
        }
        return x;
    }

    /** {@code mean_r}: one mean per row, over the last dim. */
    static double[] meanR(double[][] x) {
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double s = 0;
            for (double e : x[i]) {
                s += e;
            }
            out[i] = s / x[i].length;
        }
        return out;
    }

    /** {@code mean_c}: one mean per column, over dim -2. */
    static double[] meanC(double[][] x) {
        double[] out = new double[x[0].length];
        for (double[] row : x) {
            for (int j = 0; j < row.length; j++) {
                out[j] += row[j];
            }
        }
        for (int j = 0; j < out.length; j++) {
            out[j] /= x.length;
        }
        return out;
    }

    static double mean(double[] x) {
        double s = 0;
        for (double e : x) {
            s += e;
        }
        return s / x.length;
    }

    static void ema(double[] acc, double[] x, double beta) {
        for (int i = 0; i < acc.length; i++) {
            acc[i] = beta * acc[i] + (1 - beta) * x[i];
        }
    }

    /** {@code (R / mean(R))[:, None] * C[None, :]}. */
    static double[][] factoredEstimate(double[] r, double[] c) {
        double meanR = mean(r);
        double[][] v = new double[r.length][c.length];
        for (int i = 0; i < r.length; i++) {
            for (int j = 0; j < c.length; j++) {
                v[i][j] = (r[i] / meanR) * c[j];
            }
        }
        return v;
    }

    static double rms(double[][][] x) {
        double s = 0;
        int n = 0;
        for (double[][] m : x) {
            for (double[] row : m) {
                for (double e : row) {
                    s += e * e;
                    n++;
                }
            }
        }
        return Math.sqrt(s / n);
    }
}
