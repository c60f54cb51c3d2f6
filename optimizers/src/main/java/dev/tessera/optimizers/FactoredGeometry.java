package dev.tessera.optimizers;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * How one parameter tensor is factored (ALGORITHMS.md §1 "Factored dims"): a tensor with {@code ndim >= 2} is
 * {@code batch} independent {@code rows x cols} matrices over its last two dims (the leading dims are batch
 * dims); a tensor with {@code ndim < 2} keeps a full second moment. Element {@code (b, i, j)} of the tensor is
 * at {@code offset + (b*rows + i)*cols + j} of the flat buffers.
 *
 * <p>Row statistics are stored per row ({@code rowStatOffset + b*rows + i}) and column statistics per column
 * ({@code colStatOffset + b*cols + j}), each tensor's block contiguous, so a later ZeRO slice can own a block
 * of rows of every matrix and replicate its columns (§3.5) without changing what a statistic means.
 *
 * @param fullOffset where an unfactored tensor's full-size statistic starts in the buffer of 1-D statistics
 */
record FactoredGeometry(ParamSpan span, int offset, int numel, boolean factored, int batch, int rows, int cols,
                        int rowStatOffset, int colStatOffset, int fullOffset) {

    /** The shape of this tensor's row statistics: {@code shape[:-1]}. */
    long[] rowStatShape() {
        return Arrays.copyOf(span.shape(), span.shape().length - 1);
    }

    /** The shape of this tensor's column statistics: {@code shape[:-2] + shape[-1:]}. */
    long[] colStatShape() {
        long[] shape = span.shape();
        long[] col = Arrays.copyOf(shape, shape.length - 1);
        col[col.length - 1] = shape[shape.length - 1];
        return col;
    }

    /** The tensor's own shape, or {@code [1]} for a 0-D scalar, for full-size state views. */
    long[] fullShape() {
        return span.shape().length == 0 ? new long[] {1} : span.shape();
    }

    /** Lays out the statistics of every span, in span order. */
    static Layout layout(List<ParamSpan> spans) {
        List<FactoredGeometry> out = new ArrayList<>(spans.size());
        int rowTotal = 0;
        int colTotal = 0;
        int fullTotal = 0;
        int maxCols = 0;
        for (ParamSpan span : spans) {
            int offset = Math.toIntExact(span.offset());
            int numel = Math.toIntExact(span.numel());
            long[] shape = span.shape();
            if (shape.length >= 2) {
                int rows = Math.toIntExact(shape[shape.length - 2]);
                int cols = Math.toIntExact(shape[shape.length - 1]);
                int batch = rows == 0 || cols == 0 ? 0 : numel / (rows * cols);
                if ((long) batch * rows * cols != numel) {
                    throw new IllegalArgumentException("span " + span.name() + " has numel " + numel
                            + " but shape " + Arrays.toString(shape));
                }
                out.add(new FactoredGeometry(span, offset, numel, true, batch, rows, cols, rowTotal, colTotal, -1));
                rowTotal = Math.addExact(rowTotal, batch * rows);
                colTotal = Math.addExact(colTotal, batch * cols);
                maxCols = Math.max(maxCols, cols);
            } else {
                out.add(new FactoredGeometry(span, offset, numel, false, 1, 1, numel, -1, -1, fullTotal));
                fullTotal = Math.addExact(fullTotal, numel);
            }
        }
        return new Layout(List.copyOf(out), rowTotal, colTotal, fullTotal, maxCols);
    }

    /** All spans' geometry and the sizes of the flat statistic buffers they index into. */
    record Layout(List<FactoredGeometry> spans, int rowStats, int colStats, int fullStats, int maxCols) {
    }
}
