package dev.tessera.comm.compress;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

import java.util.Arrays;

/**
 * PowerSGD (Vogels, Karimireddy and Jaggi, 2019) for one {@code n x m} matrix layer at rank {@code r}: one step of
 * subspace iteration per training step, warm-started from the previous step's {@code Q}. The transport is the
 * caller's:
 * <pre>
 *   computeP(M, P)             P = M Q                        (n x r)
 *   all-reduce P (mean); orthonormalize(P)
 *   computeQ(M, P)             Q = M^T P, into q()            (m x r)
 *   all-reduce q() (mean)
 *   decompressInto(P, q(), out)  out = P Q^T; error feedback: decompressAdd(P, q(), -1, residual)
 * </pre>
 * Matrices are float32, row-major, in Agrona buffers at element offsets (byte offset = 4 x index): the gradient
 * already lives in one, and P and Q are all-reduced in place by the same transport that takes buffers, so no
 * copy is needed on either side. Sums are accumulated in double; r is at most 32, so plain loops suffice.
 *
 * <p>An instance belongs to one thread; its scratch is sized when the rank changes, not per call.
 */
public final class PowerSgd {

    /**
     * A column whose part independent of the columns before it is below this fraction of its norm is taken as
     * dependent: P is rounded to float32 (relative error 6e-8 per element), so a remainder under about 8 ulps is
     * mostly rounding noise, while one above it still points roughly where the data does.
     */
    private static final double DEGENERATE = 1e-6;

    /** Kahan's "twice is enough": project again when one pass cancelled more than this fraction of the norm. */
    private static final double REPROJECT = 0.5;

    private final int rows;
    private final int cols;
    private int rank;
    private UnsafeBuffer q;
    private float[] qScratch;
    private double[] rowAcc;
    private double[] qAcc;

    /**
     * A layer of {@code rows x cols} whose rank is {@code rank} capped at {@code min(rows, cols)}, with Q a seeded
     * random normal matrix, orthonormalised.
     */
    public PowerSgd(int rows, int cols, int rank, long seed) {
        if (rows < 1 || cols < 1) {
            throw new IllegalArgumentException("PowerSgd needs a matrix, got " + rows + " x " + cols);
        }
        this.rows = rows;
        this.cols = cols;
        setRank(checkedRank(rank));
        fillGaussian(q, cols, 0, this.rank, seed);
        orthonormalize(q, 0, cols, this.rank);
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    public int rank() {
        return rank;
    }

    /**
     * The warm-start Q ({@code cols x rank}, element 0), which {@link #computeQ} overwrites and the caller then
     * all-reduces in place. {@link #resize} replaces the buffer.
     */
    public MutableDirectBuffer q() {
        return q;
    }

    /** The size model, {@code 32 * r * (n + m)} bits, with r capped at {@code min(n, m)} as the layer caps it. */
    public static long sizeBits(long n, long m, int r) {
        return 32L * Math.min(r, Math.min(n, m)) * (n + m);
    }

    /**
     * Changes the rank (capped at {@code min(rows, cols)}): dropping keeps the first columns of Q; growing appends
     * columns drawn from {@code seed} and re-orthonormalises, so the columns kept span what they spanned.
     */
    public void resize(int newRank, long seed) {
        int r = checkedRank(newRank);
        if (r == rank) {
            return;
        }
        UnsafeBuffer old = q;
        int oldRank = rank;
        setRank(r);
        int kept = Math.min(oldRank, r);
        for (int j = 0; j < cols; j++) {
            for (int c = 0; c < kept; c++) {
                q.putFloat((j * r + c) << 2, old.getFloat((j * oldRank + c) << 2));
            }
        }
        if (r > oldRank) {
            fillGaussian(q, cols, oldRank, r, seed);
            orthonormalize(q, 0, cols, r);
        }
    }

    /** {@code p = M Q}: {@code n x r} at {@code p[pIndex]}, from {@code M} at {@code m[mIndex]}. */
    public void computeP(DirectBuffer m, int mIndex, MutableDirectBuffer p, int pIndex) {
        int r = rank;
        float[] qs = loadQ(q, 0);
        double[] acc = rowAcc;
        for (int i = 0; i < rows; i++) {
            Arrays.fill(acc, 0);
            int rowStart = mIndex + i * cols;
            for (int j = 0; j < cols; j++) {
                float mij = finite(m, rowStart + j);
                int base = j * r;
                for (int c = 0; c < r; c++) {
                    acc[c] += mij * qs[base + c];
                }
            }
            int out = pIndex + i * r;
            for (int c = 0; c < r; c++) {
                p.putFloat((out + c) << 2, (float) acc[c]);
            }
        }
    }

    /** {@code Q = M^T P} into {@link #q()}, from {@code M} and the orthonormalised (all-reduced) {@code P}. */
    public void computeQ(DirectBuffer m, int mIndex, DirectBuffer p, int pIndex) {
        int r = rank;
        double[] acc = qAcc;
        double[] pRow = rowAcc;
        Arrays.fill(acc, 0);
        for (int i = 0; i < rows; i++) {
            loadRow(p, pIndex, i, pRow);
            int rowStart = mIndex + i * cols;
            for (int j = 0; j < cols; j++) {
                float mij = finite(m, rowStart + j);
                int base = j * r;
                for (int c = 0; c < r; c++) {
                    acc[base + c] += mij * pRow[c];
                }
            }
        }
        for (int e = 0; e < cols * r; e++) {
            q.putFloat(e << 2, (float) acc[e]);
        }
    }

    /** {@code out = P Q^T} ({@code n x m}). */
    public void decompressInto(DirectBuffer p, int pIndex, DirectBuffer qIn, int qIndex, MutableDirectBuffer out,
                               int outIndex) {
        product(p, pIndex, qIn, qIndex, 0f, 1f, out, outIndex);
    }

    /** {@code out += scale * P Q^T}; at scale -1 on a copy of M it leaves the error-feedback residual. */
    public void decompressAdd(DirectBuffer p, int pIndex, DirectBuffer qIn, int qIndex, float scale,
                              MutableDirectBuffer out, int outIndex) {
        product(p, pIndex, qIn, qIndex, 1f, scale, out, outIndex);
    }

    /** {@code out = keep * out + scale * (P Q^T)}, with keep 0 or 1. */
    private void product(DirectBuffer p, int pIndex, DirectBuffer qIn, int qIndex, float keep, float scale,
                         MutableDirectBuffer out, int outIndex) {
        float[] qs = loadQ(qIn, qIndex);
        double[] pRow = rowAcc;
        for (int i = 0; i < rows; i++) {
            loadRow(p, pIndex, i, pRow);
            int rowStart = outIndex + i * cols;
            for (int j = 0; j < cols; j++) {
                int o = (rowStart + j) << 2;
                float before = keep == 0f ? 0f : out.getFloat(o);
                out.putFloat(o, before + scale * element(pRow, qs, j));
            }
        }
    }

    /** Element (i, j) of P Q^T from row i of P, rounded once to float32: decoding and the error both use it. */
    private float element(double[] pRow, float[] qs, int j) {
        int r = rank;
        int base = j * r;
        double sum = 0;
        for (int c = 0; c < r; c++) {
            sum += pRow[c] * qs[base + c];
        }
        return (float) sum;
    }

    private void loadRow(DirectBuffer p, int pIndex, int i, double[] row) {
        int r = rank;
        for (int c = 0; c < r; c++) {
            row[c] = p.getFloat((pIndex + i * r + c) << 2);
        }
    }

    /**
     * L-GreCo's error for a PowerSGD candidate, without communication: one power iteration (P = M Q, orthonormalise,
     * Q = M^T P) from the seeded Q of a new layer, and {@code ||M - P Q^T||^2} through the decoding path training
     * uses. Q's columns are drawn column by column and Gram-Schmidt is sequential, so rank r starts from the first
     * r columns of any larger rank's Q: the error never grows with the rank. Allocates a layer: it runs once per
     * re-selection, not per step.
     */
    public static double singleProcessError(DirectBuffer m, int mIndex, int rows, int cols, int rank, long seed) {
        PowerSgd layer = new PowerSgd(rows, cols, rank, seed);
        UnsafeBuffer p = new UnsafeBuffer(new byte[4 * rows * layer.rank]);
        layer.computeP(m, mIndex, p, 0);
        orthonormalize(p, 0, rows, layer.rank);
        layer.computeQ(m, mIndex, p, 0);
        float[] qs = layer.loadQ(layer.q, 0);
        double[] pRow = layer.rowAcc;
        double squared = 0;
        for (int i = 0; i < rows; i++) {
            layer.loadRow(p, 0, i, pRow);
            for (int j = 0; j < cols; j++) {
                // The residual exactly as decompressAdd(-1) leaves it, in float32.
                float e = m.getFloat((mIndex + i * cols + j) << 2) - layer.element(pRow, qs, j);
                squared += (double) e * e;
            }
        }
        return squared;
    }

    /**
     * Makes the {@code cols} columns of the row-major {@code rows x cols} matrix at {@code a[index]} orthonormal
     * by modified Gram-Schmidt (float32 values, double sums), in place; needs {@code cols <= rows}. A column that
     * is zero or depends on the columns before it becomes the standard basis vector least covered by them,
     * projected and normalised, so the result is always orthonormal and never NaN.
     */
    public static void orthonormalize(MutableDirectBuffer a, int index, int rows, int cols) {
        if (cols > rows) {
            throw new IllegalArgumentException("cannot orthonormalise " + cols + " columns of length " + rows);
        }
        for (int c = 0; c < cols; c++) {
            double original = columnNorm(a, index, rows, cols, c);
            if (!Double.isFinite(original)) {
                throw new IllegalArgumentException("column " + c + " of the matrix to orthonormalise is not finite");
            }
            double norm = original;
            for (int pass = 0; pass < 2 && norm > 0; pass++) {
                double before = norm;
                projectOut(a, index, rows, cols, c);
                norm = columnNorm(a, index, rows, cols, c);
                if (norm > REPROJECT * before) {
                    break;
                }
            }
            if (!(norm > DEGENERATE * original)) {
                replaceWithLeastCoveredBasisVector(a, index, rows, cols, c);
                norm = columnNorm(a, index, rows, cols, c);
            }
            scaleColumn(a, index, rows, cols, c, 1 / norm);
        }
    }

    /**
     * Column c becomes e_k minus its projection on columns [0, c), twice, for the k that maximises the remaining
     * norm {@code 1 - sum_{p<c} a[k][p]^2}. Columns [0, c) are orthonormal, so those norms squared add up to
     * {@code rows - c >= 1}: the best is at least {@code 1/rows}, well away from cancellation. Ties go to the
     * lowest k, so the choice is deterministic.
     */
    private static void replaceWithLeastCoveredBasisVector(MutableDirectBuffer a, int index, int rows, int cols,
                                                           int c) {
        int best = 0;
        double bestRemaining = -1;
        for (int k = 0; k < rows; k++) {
            double covered = 0;
            for (int p = 0; p < c; p++) {
                double v = a.getFloat((index + k * cols + p) << 2);
                covered += v * v;
            }
            if (1 - covered > bestRemaining) {
                bestRemaining = 1 - covered;
                best = k;
            }
        }
        for (int i = 0; i < rows; i++) {
            a.putFloat((index + i * cols + c) << 2, i == best ? 1f : 0f);
        }
        projectOut(a, index, rows, cols, c);
        projectOut(a, index, rows, cols, c);
    }

    /** Column c minus its projections on columns [0, c), one after another (the "modified" in MGS). */
    private static void projectOut(MutableDirectBuffer a, int index, int rows, int cols, int c) {
        for (int p = 0; p < c; p++) {
            double dot = 0;
            for (int i = 0; i < rows; i++) {
                int row = index + i * cols;
                dot += (double) a.getFloat((row + p) << 2) * a.getFloat((row + c) << 2);
            }
            for (int i = 0; i < rows; i++) {
                int row = index + i * cols;
                int o = (row + c) << 2;
                a.putFloat(o, (float) (a.getFloat(o) - dot * a.getFloat((row + p) << 2)));
            }
        }
    }

    private static double columnNorm(DirectBuffer a, int index, int rows, int cols, int c) {
        double sum = 0;
        for (int i = 0; i < rows; i++) {
            double v = a.getFloat((index + i * cols + c) << 2);
            sum += v * v;
        }
        return Math.sqrt(sum);
    }

    private static void scaleColumn(MutableDirectBuffer a, int index, int rows, int cols, int c, double factor) {
        for (int i = 0; i < rows; i++) {
            int o = (index + i * cols + c) << 2;
            a.putFloat(o, (float) (a.getFloat(o) * factor));
        }
    }

    /**
     * Columns [from, to) of the row-major {@code rows x to} matrix {@code a} from a standard normal stream per
     * column, keyed by seed and column: a column's values do not depend on how many columns there are.
     */
    private static void fillGaussian(MutableDirectBuffer a, int rows, int from, int to, long seed) {
        for (int c = from; c < to; c++) {
            long key = SplitMix64.mix(seed + SplitMix64.GAMMA * (c + 1));
            for (int i = 0; i < rows; i++) {
                a.putFloat((i * to + c) << 2, (float) SplitMix64.gaussian(key, i));
            }
        }
    }

    private int checkedRank(int requested) {
        if (requested < 1) {
            throw new IllegalArgumentException("PowerSgd rank must be positive: " + requested);
        }
        return Math.min(requested, Math.min(rows, cols));
    }

    private void setRank(int r) {
        rank = r;
        q = new UnsafeBuffer(new byte[4 * cols * r]);
        qScratch = new float[cols * r];
        rowAcc = new double[r];
        qAcc = new double[cols * r];
    }

    /** A (cols x rank) Q into float scratch, so the inner loops read an array and not a bounds-checked buffer. */
    private float[] loadQ(DirectBuffer qIn, int qIndex) {
        float[] qs = qScratch;
        for (int e = 0; e < qs.length; e++) {
            qs[e] = qIn.getFloat((qIndex + e) << 2);
        }
        return qs;
    }

    private static float finite(DirectBuffer m, int element) {
        float v = m.getFloat(element << 2);
        if (!(Math.abs(v) <= Float.MAX_VALUE)) {
            throw new IllegalArgumentException("PowerSgd: matrix element " + element + " is " + v);
        }
        return v;
    }
}
