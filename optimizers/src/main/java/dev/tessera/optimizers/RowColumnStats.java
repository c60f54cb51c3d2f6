package dev.tessera.optimizers;

import java.util.Arrays;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Exponential moving averages of a nonnegative per-element statistic {@code X} for every span: for factored
 * tensors the row means {@code R = EMA(mean_r(X))} and column means {@code C = EMA(mean_c(X))}
 * (ALGORITHMS.md §1), optionally the full {@code EMA(X)} for unfactored tensors. The factored estimate of
 * {@code X} at {@code (b, i, j)} is {@code R_bi / mean_i(R_b) * C_bj} (row means and sums give the same
 * estimate, §1 "Means vs sums").
 *
 * <p>State lives in three flat buffers in the parameters' dtype, indexed by {@link FactoredGeometry}; an
 * empty buffer is not allocated.
 */
final class RowColumnStats {

    private final INDArray rows;
    private final INDArray cols;
    private final INDArray full;
    final FlatVector r;
    final FlatVector c;
    final FlatVector v;

    RowColumnStats(FactoredGeometry.Layout layout, DataType dtype, boolean withFull) {
        rows = zerosOrNull(dtype, layout.rowStats());
        cols = zerosOrNull(dtype, layout.colStats());
        full = withFull ? zerosOrNull(dtype, layout.fullStats()) : null;
        r = rows == null ? null : FlatVector.of(rows);
        c = cols == null ? null : FlatVector.of(cols);
        v = full == null ? null : FlatVector.of(full);
    }

    /**
     * Blends this step's {@code Q = g^2 + eps1} ({@code g = gradScale * grad}; eps1 added before averaging, §1)
     * into R and C, or into V for an unfactored tensor, and returns {@code sum((g / sqrt(Vhat))^2)} over the
     * tensor with the new estimate: the square sum behind the update clipping. {@code colSums} is scratch of at
     * least {@code cols} entries.
     */
    double blendSquaredGradients(FactoredGeometry geo, FlatVector grads, double gradScale, double eps1,
                                 double beta, double[] colSums) {
        if (!geo.factored()) {
            double sum = 0;
            for (int e = 0; e < geo.numel(); e++) {
                double g = grads.get(geo.offset() + e) * gradScale;
                int at = geo.fullOffset() + e;
                v.set(at, beta * v.get(at) + (1 - beta) * (g * g + eps1));
                double u = g / Math.sqrt(v.get(at)); // read back, so fp32 normalises by the stored value
                sum += u * u;
            }
            return sum;
        }
        int rows = geo.rows();
        int cols = geo.cols();
        for (int b = 0; b < geo.batch(); b++) {
            Arrays.fill(colSums, 0, cols, 0.0);
            for (int i = 0; i < rows; i++) {
                int base = geo.offset() + (b * rows + i) * cols;
                double rowSum = 0;
                for (int j = 0; j < cols; j++) {
                    double g = grads.get(base + j) * gradScale;
                    double q = g * g + eps1;
                    rowSum += q;
                    colSums[j] += q;
                }
                blendRow(geo, b, i, rowSum, beta);
            }
            blendColumns(geo, b, colSums, beta);
        }
        double sum = 0;
        for (int b = 0; b < geo.batch(); b++) {
            double meanRow = meanRow(geo, b);
            inverseSqrtColumns(geo, b, colSums);
            for (int i = 0; i < rows; i++) {
                double rowInv = inverseSqrtRow(geo, b, i, meanRow);
                int base = geo.offset() + (b * rows + i) * cols;
                for (int j = 0; j < cols; j++) {
                    double u = rowInv * colSums[j] * (grads.get(base + j) * gradScale);
                    sum += u * u;
                }
            }
        }
        return sum;
    }

    /** {@code R = beta R + (1-beta) rowSum/cols} for row {@code i} of batch {@code b}. */
    void blendRow(FactoredGeometry geo, int b, int i, double rowSum, double beta) {
        int at = geo.rowStatOffset() + b * geo.rows() + i;
        r.set(at, beta * r.get(at) + (1 - beta) * (rowSum / geo.cols()));
    }

    /** {@code C = beta C + (1-beta) colSum/rows} for every column of batch {@code b}. */
    void blendColumns(FactoredGeometry geo, int b, double[] colSums, double beta) {
        int base = geo.colStatOffset() + b * geo.cols();
        for (int j = 0; j < geo.cols(); j++) {
            c.set(base + j, beta * c.get(base + j) + (1 - beta) * (colSums[j] / geo.rows()));
        }
    }

    /** {@code mean_r(R)} of batch {@code b}: the mean of its row statistics, summed in row order. */
    double meanRow(FactoredGeometry geo, int b) {
        int base = geo.rowStatOffset() + b * geo.rows();
        double sum = 0;
        for (int i = 0; i < geo.rows(); i++) {
            sum += r.get(base + i);
        }
        return sum / geo.rows();
    }

    /**
     * {@code 1/sqrt(R_bi / mean_r(R_b))}, once per row. The estimate's inverse square root is taken as
     * {@code rsqrt(R/mean(R)) * rsqrt(C)}, HF's {@code _approx_sq_grad} order, so the inner loops only multiply.
     */
    double inverseSqrtRow(FactoredGeometry geo, int b, int i, double meanRow) {
        return 1.0 / Math.sqrt(r.get(geo.rowStatOffset() + b * geo.rows() + i) / meanRow);
    }

    /** {@code out[j] = 1/sqrt(C_bj)} for every column of batch {@code b}. */
    void inverseSqrtColumns(FactoredGeometry geo, int b, double[] out) {
        int base = geo.colStatOffset() + b * geo.cols();
        for (int j = 0; j < geo.cols(); j++) {
            out[j] = 1.0 / Math.sqrt(c.get(base + j));
        }
    }

    /** Adds this statistic's per-tensor views to {@code state}, named {@code prefix + span + suffix}. */
    void addState(Map<String, INDArray> state, FactoredGeometry geo, String prefix, String rowSuffix,
                  String colSuffix, String fullSuffix) {
        String name = prefix + geo.span().name();
        if (geo.factored()) {
            if (geo.numel() > 0) {
                state.put(name + rowSuffix, view(rows, geo.rowStatOffset(), geo.rowStatShape()));
                state.put(name + colSuffix, view(cols, geo.colStatOffset(), geo.colStatShape()));
            }
        } else if (full != null && geo.numel() > 0) {
            state.put(name + fullSuffix, view(full, geo.fullOffset(), geo.fullShape()));
        }
    }

    long bytes() {
        return bytesOf(rows) + bytesOf(cols) + bytesOf(full);
    }

    static long bytesOf(INDArray a) {
        return a == null ? 0 : a.length() * a.dataType().width();
    }

    static INDArray zerosOrNull(DataType dtype, long length) {
        return length == 0 ? null : Nd4j.zeros(dtype, length);
    }

    /** A C-order view of {@code shape} at element {@code offset} of the flat array (no copy). */
    static INDArray view(INDArray flat, long offset, long[] shape) {
        long[] stride = new long[shape.length];
        long s = 1;
        for (int k = shape.length - 1; k >= 0; k--) {
            stride[k] = s;
            s *= shape[k];
        }
        return Nd4j.create(flat.data(), shape, stride, flat.offset() + offset, 'c', flat.dataType());
    }
}
