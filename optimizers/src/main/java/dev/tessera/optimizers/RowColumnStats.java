package dev.tessera.optimizers;

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
 * <p>Under ZeRO row sharding (§3.5) this rank keeps R only for the rows it owns and C in full (replicated):
 * a row mean needs only its own row, while a column mean and {@code mean_i(R_b)} need every row, so callers
 * pack this rank's column sums and row-statistic sums, sum them over the group, and pass the packed totals in.
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
     * Round 1 of §3.5 for a factored tensor, over the owned rows: {@code R = b R + (1-b)(mean_r(g^2) + eps1)}
     * (local), then adds {@code colsum(g^2)} into {@code packed[colSlot..]} and the new R values into
     * {@code packed[rowSumSlot + b]} ({@code g = gradScale * grad}). eps1 is added to the means, not to each
     * element, so the column means can add it once after the reduction. {@code grads} is the tensor's own view.
     */
    void blendRowsAndPackSums(FactoredGeometry geo, FlatVector grads, double gradScale, double eps1, double beta,
                              double[] packed) {
        int rows = geo.rows();
        int cols = geo.cols();
        for (int fr = geo.firstRow(); fr < geo.endRow(); fr++) {
            int b = fr / rows;
            int base = fr * cols;
            int colAt = geo.colSlot() + b * cols;
            double rowSum = 0;
            for (int j = 0; j < cols; j++) {
                double g = grads.get(base + j) * gradScale;
                double q = g * g;
                rowSum += q;
                packed[colAt + j] += q;
            }
            packed[geo.rowSumSlot() + b] += blendRow(geo, fr, rowSum / cols + eps1, beta);
        }
    }

    /**
     * {@code V = b V + (1-b)(g^2 + eps1)} over the owned elements of an unfactored tensor (local: no statistic
     * crosses elements); returns {@code sum((g / sqrt(V))^2)} over them, this rank's part of the clip RMS.
     * {@code grads} is the tensor's own view.
     */
    double blendFull(FactoredGeometry geo, FlatVector grads, double gradScale, double eps1, double beta) {
        double sum = 0;
        for (int e = geo.ownFrom(); e < geo.ownTo(); e++) {
            double g = grads.get(e) * gradScale;
            int at = geo.fullOffset() + e - geo.ownFrom();
            v.set(at, beta * v.get(at) + (1 - beta) * (g * g + eps1));
            double u = g / Math.sqrt(v.get(at)); // read back, so fp32 normalises by the stored value
            sum += u * u;
        }
        return sum;
    }

    /**
     * {@code sum((g / sqrt(Vhat))^2)} over the owned rows with the new estimate; {@code packed} holds the
     * group's row-statistic sums (for {@code mean_i(R_b)}), {@code colInv} is scratch of {@code cols}.
     */
    double sumSquaresNormalised(FactoredGeometry geo, FlatVector grads, double gradScale, double[] packed,
                                double[] colInv) {
        int rows = geo.rows();
        int cols = geo.cols();
        double sum = 0;
        int b = -1;
        double meanRow = 0;
        for (int fr = geo.firstRow(); fr < geo.endRow(); fr++) {
            if (fr / rows != b) {
                b = fr / rows;
                meanRow = packed[geo.rowSumSlot() + b] / rows;
                inverseSqrtColumns(geo, b, colInv);
            }
            double rowInv = inverseSqrtRow(geo, fr, meanRow);
            int base = fr * cols;
            for (int j = 0; j < cols; j++) {
                double u = rowInv * colInv[j] * (grads.get(base + j) * gradScale);
                sum += u * u;
            }
        }
        return sum;
    }

    /** {@code R = beta R + (1-beta) mean} for flat row {@code fr} (owned); returns the stored value. */
    double blendRow(FactoredGeometry geo, int fr, double mean, double beta) {
        int at = geo.rowStatOffset() + fr - geo.firstRow();
        r.set(at, beta * r.get(at) + (1 - beta) * mean);
        return r.get(at); // read back, so fp32 sums the stored statistics
    }

    /**
     * {@code C = beta C + (1-beta)(colSum/rows + addend)} for every column of every matrix of the tensor, from
     * the group's column sums in {@code packed[colSlot..]}; divided by the tensor's true row count (§3.5).
     */
    void blendColumns(FactoredGeometry geo, double[] packed, double addend, double beta) {
        int n = geo.batch() * geo.cols();
        for (int k = 0; k < n; k++) {
            int at = geo.colStatOffset() + k;
            c.set(at, beta * c.get(at) + (1 - beta) * (packed[geo.colSlot() + k] / geo.rows() + addend));
        }
    }

    /**
     * {@code 1/sqrt(R_fr / mean_r(R))} for owned flat row {@code fr}. The estimate's inverse square root is
     * taken as {@code rsqrt(R/mean(R)) * rsqrt(C)}, HF's {@code _approx_sq_grad} order, so the inner loops only
     * multiply.
     */
    double inverseSqrtRow(FactoredGeometry geo, int fr, double meanRow) {
        return 1.0 / Math.sqrt(r.get(geo.rowStatOffset() + fr - geo.firstRow()) / meanRow);
    }

    /** {@code out[j] = 1/sqrt(C_bj)} for every column of matrix {@code b}. */
    void inverseSqrtColumns(FactoredGeometry geo, int b, double[] out) {
        int base = geo.colStatOffset() + b * geo.cols();
        for (int j = 0; j < geo.cols(); j++) {
            out[j] = 1.0 / Math.sqrt(c.get(base + j));
        }
    }

    /**
     * Adds this statistic's slices of one owned tensor to {@code state}, named {@code prefix + span + suffix}:
     * the owned rows of {@code shape[:-1]}, all of {@code shape[:-2] + shape[-1:]} (replicated), or the owned
     * elements of an unfactored tensor.
     */
    void addState(Map<String, StateSlice> state, FactoredGeometry geo, String prefix, String rowSuffix,
                  String colSuffix, String fullSuffix) {
        if (!geo.owns()) {
            return;
        }
        String name = prefix + geo.span().name();
        if (geo.factored()) {
            int ownedRows = geo.endRow() - geo.firstRow();
            state.put(name + rowSuffix, new StateSlice(view(rows, geo.rowStatOffset(), ownedRows),
                    geo.rowStatShape(), geo.firstRow()));
            state.put(name + colSuffix, new StateSlice(view(cols, geo.colStatOffset(),
                    (long) geo.batch() * geo.cols()), geo.colStatShape(), 0));
        } else if (full != null) {
            state.put(name + fullSuffix, new StateSlice(view(full, geo.fullOffset(), geo.ownTo() - geo.ownFrom()),
                    geo.fullShape(), geo.ownFrom()));
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

    /** A 1-D view of {@code length} elements at element {@code offset} of the flat array (no copy). */
    static INDArray view(INDArray flat, long offset, long length) {
        return Nd4j.create(flat.data(), new long[] {length}, new long[] {1}, flat.offset() + offset, 'c',
                flat.dataType());
    }
}
