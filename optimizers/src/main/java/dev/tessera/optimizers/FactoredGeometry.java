package dev.tessera.optimizers;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * How one parameter tensor is factored (ALGORITHMS.md §1 "Factored dims") and which part of it this rank owns
 * under ZeRO (§3.5). A tensor with {@code ndim >= 2} is {@code batch} independent {@code rows x cols} matrices
 * over its last two dims (the leading dims are batch dims); a tensor with {@code ndim < 2} keeps a full second
 * moment. Element {@code (b, i, j)} of the tensor is at {@code offset + (b*rows + i)*cols + j} of the flat
 * buffers ({@code offset} is a long: the flat buffers may exceed 2^31 elements, one tensor may not), so
 * {@code b*rows + i} is its <em>flat row</em>, which is also its index in the C-order flattening of
 * the row statistic of shape {@code shape[:-1]}.
 *
 * <p>The rank owns tensor elements {@code [ownFrom, ownTo)}; for a factored tensor these are whole flat rows
 * {@code [ownFrom/cols, ownTo/cols)} (the shard may not cut a row, §3.5 "Layout"). Its local statistic buffers
 * hold: the owned rows' statistics from {@code rowStatOffset}, all {@code batch*cols} column statistics from
 * {@code colStatOffset} (replicated, only where it owns a row), and an unfactored tensor's owned elements from
 * {@code fullOffset}. Momentum is laid out like the flat buffers, shifted by the shard's start.
 *
 * <p>The packed reduction buffers have a slot layout that depends only on the model, never on the shard, so
 * every rank packs the same length: a factored tensor's column sums at {@code colSlot} ({@code batch*cols}),
 * followed by its {@code batch} row-statistic sums at {@code rowSumSlot}; every tensor's own scalar (sum of
 * squares of its update or parameters) at {@code tensorSlot}, counted after all factored slots.
 */
record FactoredGeometry(ParamSpan span, long offset, int numel, boolean factored, int batch, int rows, int cols,
                        int ownFrom, int ownTo, int rowStatOffset, int colStatOffset, int fullOffset,
                        int colSlot, int rowSumSlot, int tensorSlot) {

    /** Whether this rank owns any element of the tensor. */
    boolean owns() {
        return ownTo > ownFrom;
    }

    /** The first owned flat row (factored tensors). */
    int firstRow() {
        return ownFrom / cols;
    }

    /** One past the last owned flat row (factored tensors). */
    int endRow() {
        return ownTo / cols;
    }

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

    /** The tensor's own shape, or {@code [1]} for a 0-D scalar, for full-size state. */
    long[] fullShape() {
        return span.shape().length == 0 ? new long[] {1} : span.shape();
    }

    /**
     * Lays out the statistics of every span, in span order, for the rank owning {@code shard}.
     *
     * @throws IllegalArgumentException if the shard cuts a factored tensor inside a row
     */
    static Layout layout(List<ParamSpan> spans, Shard shard) {
        List<FactoredGeometry> out = new ArrayList<>(spans.size());
        int rowTotal = 0;
        int colTotal = 0;
        int fullTotal = 0;
        int maxCols = 0;
        int factoredSlots = 0;
        for (ParamSpan span : spans) { // first pass: where the per-tensor scalars start
            long[] shape = span.shape();
            if (shape.length >= 2) {
                int rows = Math.toIntExact(shape[shape.length - 2]);
                int cols = Math.toIntExact(shape[shape.length - 1]);
                int batch = rows == 0 || cols == 0 ? 0 : Math.toIntExact(span.numel() / ((long) rows * cols));
                factoredSlots = Math.addExact(factoredSlots, Math.multiplyExact(batch, cols + 1));
            }
        }
        int slot = 0;
        for (int s = 0; s < spans.size(); s++) {
            ParamSpan span = spans.get(s);
            long offset = span.offset();
            int numel = Math.toIntExact(span.numel());
            // The owned part of the tensor, relative to its start; empty as [0, 0).
            long lo = Math.max(shard.from(), span.offset()) - span.offset();
            long hi = Math.min(shard.to(), span.offset() + span.numel()) - span.offset();
            int ownFrom = lo < hi ? (int) lo : 0;
            int ownTo = lo < hi ? (int) hi : 0;
            long[] shape = span.shape();
            if (shape.length >= 2) {
                int rows = Math.toIntExact(shape[shape.length - 2]);
                int cols = Math.toIntExact(shape[shape.length - 1]);
                int batch = rows == 0 || cols == 0 ? 0 : numel / (rows * cols);
                if ((long) batch * rows * cols != numel) {
                    throw new IllegalArgumentException("span " + span.name() + " has numel " + numel
                            + " but shape " + Arrays.toString(shape));
                }
                if (ownTo > ownFrom && (ownFrom % cols != 0 || ownTo % cols != 0)) {
                    throw new IllegalArgumentException("shard " + shard + " cuts tensor " + span.name()
                            + " inside a row; cut on row boundaries (ShardPlan.bounds)");
                }
                boolean owns = ownTo > ownFrom;
                out.add(new FactoredGeometry(span, offset, numel, true, batch, rows, cols, ownFrom, ownTo,
                        owns ? rowTotal : -1, owns ? colTotal : -1, -1, slot, slot + batch * cols,
                        factoredSlots + s));
                slot += batch * (cols + 1);
                if (owns) {
                    rowTotal = Math.addExact(rowTotal, (ownTo - ownFrom) / cols);
                    colTotal = Math.addExact(colTotal, batch * cols);
                    maxCols = Math.max(maxCols, cols);
                }
            } else {
                boolean owns = ownTo > ownFrom;
                out.add(new FactoredGeometry(span, offset, numel, false, 1, 1, numel, ownFrom, ownTo, -1, -1,
                        owns ? fullTotal : -1, -1, -1, factoredSlots + s));
                if (owns) {
                    fullTotal = Math.addExact(fullTotal, ownTo - ownFrom);
                }
            }
        }
        return new Layout(List.copyOf(out), rowTotal, colTotal, fullTotal, maxCols, factoredSlots, spans.size());
    }

    /**
     * All spans' geometry, the sizes of this rank's local statistic buffers, and the packed sizes: {@code
     * factoredSlots} column and row-sum slots, then one slot per tensor ({@code tensors}).
     */
    record Layout(List<FactoredGeometry> spans, int rowStats, int colStats, int fullStats, int maxCols,
                  int factoredSlots, int tensors) {
    }
}
