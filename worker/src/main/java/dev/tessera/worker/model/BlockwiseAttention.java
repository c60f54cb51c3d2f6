package dev.tessera.worker.model;

import dev.tessera.optimizers.kernel.NativeMemory;
import org.agrona.UnsafeApi;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Causal attention of one block of queries against one block of keys, merged by the log-sum-exp rule into a
 * running output (ALGORITHMS.md 8.2): what a ring attention rank computes at each step. Queries and keys carry
 * their global positions (ascending), and key j is visible to query i iff {@code kPos[j] <= qPos[i]}. Nothing of
 * size Tq x Tk is kept between calls: forward keeps only the output O and each row's log-sum-exp, and backward
 * recomputes the probabilities from them, flash-attention style.
 *
 * <p>Heads are taken {@code chunk} at a time through contiguous scratch (the score matrices of one chunk are at
 * most {@link #CHUNK_ELEMENTS}), with the gemms in ND4J's batched matmul and the masked softmax in plain loops;
 * float32 and float64 alike (the dtype of the arrays).
 */
public final class BlockwiseAttention {
    /** Elements of one chunk's [heads, Tq, Tk] score scratch (256 MB in float32). */
    static final long CHUNK_ELEMENTS = 1L << 26;

    private final int bh;
    private final int tq;
    private final int tk;
    private final int d;
    private final int chunk;       // (batch, head) rows per pass; divides bh
    private final double scale;
    private final int width;
    private final INDArray qc;     // [chunk, Tq, D] this chunk's queries
    private final INDArray kc;     // [chunk, Tk, D]
    private final INDArray vc;     // [chunk, Tk, D]
    private final INDArray dyc;    // [chunk, Tq, D] dO
    private final INDArray outQ;   // [chunk, Tq, D] P V, or dS K
    private final INDArray outK;   // [chunk, Tk, D] P^T dO, or dS^T Q
    private final INDArray s;      // [chunk, Tq, Tk] scores, then probabilities
    private final INDArray dp;     // [chunk, Tq, Tk] dP, then dS (backward)
    private final double[] rowLse; // [chunk * Tq] the block's log-sum-exp per query row
    private final int[] visible;   // [Tq] keys of the block each query sees

    /** Scratch for {@code bh} (batch, head) rows of {@code tq} queries against {@code tk} keys of width {@code d}. */
    public BlockwiseAttention(DataType dt, int bh, int tq, int tk, int d) {
        this.bh = bh;
        this.tq = tq;
        this.tk = tk;
        this.d = d;
        this.chunk = chunkOf(bh, (long) tq * tk);
        this.scale = 1.0 / Math.sqrt(d);
        this.width = dt.width();
        qc = Nd4j.createUninitialized(dt, chunk, tq, d);
        kc = Nd4j.createUninitialized(dt, chunk, tk, d);
        vc = Nd4j.createUninitialized(dt, chunk, tk, d);
        dyc = Nd4j.createUninitialized(dt, chunk, tq, d);
        outQ = Nd4j.createUninitialized(dt, chunk, tq, d);
        outK = Nd4j.createUninitialized(dt, chunk, tk, d);
        s = Nd4j.createUninitialized(dt, chunk, tq, tk);
        dp = Nd4j.createUninitialized(dt, chunk, tq, tk);
        rowLse = new double[chunk * tq];
        visible = new int[tq];
    }

    /** The largest divisor of {@code bh} whose score scratch stays within {@link #CHUNK_ELEMENTS}. */
    static int chunkOf(int bh, long perRow) {
        int best = 1;
        for (int c = 1; c <= bh; c++) {
            if (bh % c == 0 && c * perRow <= CHUNK_ELEMENTS) {
                best = c;
            }
        }
        return best;
    }

    /** The bytes this scratch holds (for the memory planner). */
    public static long scratchBytes(int width, int bh, int tq, int tk, int d) {
        long c = chunkOf(bh, (long) tq * tk);
        return width * c * (2L * tq * d + 3L * tk * d + tq * d + 2L * tq * tk);
    }

    /** o = 0, lse = -inf: the merge of no block. o: [BH, Tq, D], lse: [BH, Tq]. */
    public static void start(INDArray o, INDArray lse) {
        o.assign(0);
        lse.assign(Double.NEGATIVE_INFINITY);
    }

    /**
     * Merges attention of q [BH, Tq, D] at qPos against k, v [BH, Tk, D] at kPos into (o [BH, Tq, D], lse [BH, Tq]).
     * A block whose keys all come after every query adds nothing and costs nothing.
     */
    public void forward(INDArray q, int[] qPos, INDArray k, INDArray v, int[] kPos, INDArray o, INDArray lse) {
        if (!countVisible(qPos, kPos)) {
            return;
        }
        Mem sm = new Mem(s);
        Mem om = new Mem(o);
        Mem lm = new Mem(lse);
        Mem pv = new Mem(outQ);
        for (int r0 = 0; r0 < bh; r0 += chunk) {
            copyRows(q, r0, qc, tq);
            copyRows(k, r0, kc, tk);
            copyRows(v, r0, vc, tk);
            Nd4j.matmul(qc, kc, s, false, true, false);           // S = Q K^T      [chunk, Tq, Tk]
            for (int row = 0; row < chunk * tq; row++) {
                rowLse[row] = softmaxRow(sm, row * tk, visible[row % tq]);
            }
            Nd4j.matmul(s, vc, outQ, false, false, false);        // o_b = P V      [chunk, Tq, D]
            for (int row = 0; row < chunk * tq; row++) {
                merge(om, lm, (r0 * tq + row), pv, row);
            }
        }
    }

    /**
     * The block's part of backward: dq += dS K scale, dk += dS^T Q scale, dv += P^T dO, with P = exp(S scale - lse)
     * from the final lse [BH, Tq] and dS = P (dP - delta), delta [BH, Tq] = rowsum(dO * O) ({@link #delta}).
     */
    public void backward(INDArray q, int[] qPos, INDArray k, INDArray v, int[] kPos, INDArray dy, INDArray delta,
                         INDArray lse, INDArray dq, INDArray dk, INDArray dv) {
        if (!countVisible(qPos, kPos)) {
            return;
        }
        Mem sm = new Mem(s);
        Mem dpm = new Mem(dp);
        Mem lm = new Mem(lse);
        Mem dm = new Mem(delta);
        for (int r0 = 0; r0 < bh; r0 += chunk) {
            copyRows(q, r0, qc, tq);
            copyRows(k, r0, kc, tk);
            copyRows(v, r0, vc, tk);
            copyRows(dy, r0, dyc, tq);
            Nd4j.matmul(qc, kc, s, false, true, false);           // S = Q K^T
            for (int row = 0; row < chunk * tq; row++) {
                probabilities(sm, row * tk, visible[row % tq], lm.get(r0 * tq + row));
            }
            Nd4j.matmul(s, dyc, outK, true, false, false);        // dV_b = P^T dO  [chunk, Tk, D]
            addRows(outK, dv, r0, tk, 1.0);
            Nd4j.matmul(dyc, vc, dp, false, true, false);         // dP = dO V^T    [chunk, Tq, Tk]
            for (int row = 0; row < chunk * tq; row++) {
                double dl = dm.get(r0 * tq + row);
                int o = row * tk;
                int n = visible[row % tq];
                for (int j = 0; j < n; j++) {
                    dpm.set(o + j, sm.get(o + j) * (dpm.get(o + j) - dl));  // dS = P (dP - delta)
                }
                for (int j = n; j < tk; j++) {
                    dpm.set(o + j, 0);
                }
            }
            Nd4j.matmul(dp, kc, outQ, false, false, false);       // dS K           [chunk, Tq, D]
            addRows(outQ, dq, r0, tq, scale);
            Nd4j.matmul(dp, qc, outK, true, false, false);        // dS^T Q         [chunk, Tk, D]
            addRows(outK, dk, r0, tk, scale);
        }
    }

    /** delta [BH, Tq] = rowsum(dO * O) over D, which backward's softmax gradient subtracts. */
    public static void delta(INDArray dy, INDArray o, INDArray delta) {
        Mem a = new Mem(dy);
        Mem b = new Mem(o);
        Mem out = new Mem(delta);
        int d = (int) dy.size(2);
        int rows = (int) (dy.length() / d);
        for (int r = 0; r < rows; r++) {
            double sum = 0;
            for (int c = 0; c < d; c++) {
                sum += a.get(r * d + c) * b.get(r * d + c);
            }
            out.set(r, sum);
        }
    }

    /** Fills {@link #visible} for these positions; false when no query sees any key (the block is skipped). */
    private boolean countVisible(int[] qPos, int[] kPos) {
        boolean any = false;
        int j = 0;
        for (int i = 0; i < tq; i++) {
            while (j < tk && kPos[j] <= qPos[i]) {
                j++;
            }
            visible[i] = j;
            any |= j > 0;
        }
        return any;
    }

    /**
     * In place: s[o..o+n) becomes softmax(scale * s) over the visible prefix, the rest 0. Returns the row's
     * log-sum-exp of the scaled scores, -inf when it sees nothing.
     */
    private double softmaxRow(Mem sm, int o, int n) {
        if (n == 0) {
            for (int j = 0; j < tk; j++) {
                sm.set(o + j, 0);
            }
            return Double.NEGATIVE_INFINITY;
        }
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) {
            max = Math.max(max, sm.get(o + j));
        }
        double sum = 0;
        for (int j = 0; j < n; j++) {
            double e = Math.exp((sm.get(o + j) - max) * scale);
            sm.set(o + j, e);
            sum += e;
        }
        for (int j = 0; j < n; j++) {
            sm.set(o + j, sm.get(o + j) / sum);
        }
        for (int j = n; j < tk; j++) {
            sm.set(o + j, 0);
        }
        return max * scale + Math.log(sum);
    }

    /** In place: s[o..o+n) becomes exp(scale * s - lse), the final probabilities; the rest 0. */
    private void probabilities(Mem sm, int o, int n, double lse) {
        for (int j = 0; j < n; j++) {
            sm.set(o + j, Math.exp(sm.get(o + j) * scale - lse));
        }
        for (int j = n; j < tk; j++) {
            sm.set(o + j, 0);
        }
    }

    /**
     * Row {@code at} of (o, lse) merged with row {@code row} of the block's output: weights exp(lse - new) and
     * exp(lse_b - new), a -inf side weighing 0 (never exp(-inf - -inf)).
     */
    private void merge(Mem om, Mem lm, int at, Mem pv, int row) {
        double lb = rowLse[row];
        if (lb == Double.NEGATIVE_INFINITY) {
            return;
        }
        double la = lm.get(at);
        if (la == Double.NEGATIVE_INFINITY) {
            for (int c = 0; c < d; c++) {
                om.set(at * d + c, pv.get(row * d + c));
            }
            lm.set(at, lb);
            return;
        }
        double hi = Math.max(la, lb);
        double merged = hi + Math.log(Math.exp(la - hi) + Math.exp(lb - hi));
        double wa = Math.exp(la - merged);
        double wb = Math.exp(lb - merged);
        for (int c = 0; c < d; c++) {
            om.set(at * d + c, wa * om.get(at * d + c) + wb * pv.get(row * d + c));
        }
        lm.set(at, merged);
    }

    /** Rows [r0, r0 + chunk) of src [BH, T, D] into dst [chunk, T, D]. */
    private void copyRows(INDArray src, int r0, INDArray dst, int t) {
        long bytes = (long) chunk * t * d * width;
        UnsafeApi.copyMemory(NativeMemory.address(src) + (long) r0 * t * d * width, NativeMemory.address(dst), bytes);
    }

    /** dst rows [r0, r0 + chunk) of [BH, T, D] += factor * src [chunk, T, D]. */
    private void addRows(INDArray src, INDArray dst, int r0, int t, double factor) {
        Mem a = new Mem(src);
        Mem b = new Mem(dst);
        int base = r0 * t * d;
        int n = chunk * t * d;
        for (int i = 0; i < n; i++) {
            b.set(base + i, b.get(base + i) + factor * a.get(i));
        }
    }
}
