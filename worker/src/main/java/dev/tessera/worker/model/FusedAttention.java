package dev.tessera.worker.model;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * The float32 causal attention of {@link AttentionCore} for one (batch, head) at a time, in Java Vector
 * API code over heap scratch: scores, masked softmax and P V in one pass forward; dP, dS, dQ, dK, dV in
 * one pass backward. It skips the masked triangle the 3-D ND4J matmuls compute in full (half the flops)
 * and never materialises scores through ND4J ops. Each instance is one thread's scratch; (batch, head)
 * items are independent, so any split over threads gives bit-identical results.
 *
 * <p>Layout: q, dy [Tq, D]; k, v [Tk, D]; P and dS rows have stride {@code tkp} = Tk rounded up to the
 * vector length, with zeros at and past each row's visible length (the kernels below rely on those zeros
 * instead of masking near the diagonal). Key j is visible to query i iff {@code kPos0 + j <= qPos[i]}; the query
 * positions ascend (one run, or a sequence-parallel rank's zig-zag chunks), so each row sees at least what the row
 * before it sees.
 */
final class FusedAttention {
    private static final int L = Mem.L;
    private static final int R = 4; // rows per register block
    /** Row t (t in 1..L) of L lanes: 1 for the t visible lanes of a vector, 0 for the rest. */
    private static final float[] KEEP = laneTable(1f, 0f);
    /** Row t: 0 for the t visible lanes, -inf for the rest (added to scores before the row max). */
    private static final float[] HIDE = laneTable(0f, Float.NEGATIVE_INFINITY);

    private static float[] laneTable(float visible, float hidden) {
        float[] table = new float[(L + 1) * L];
        for (int t = 0; t <= L; t++) {
            for (int lane = 0; lane < L; lane++) {
                table[t * L + lane] = lane < t ? visible : hidden;
            }
        }
        return table;
    }

    private final int tq;
    private final int tk;
    private final int tkp;
    private final int d;
    private final int[] qPos; // [Tq] ascending
    private final int kPos0;
    private final float scale;
    private final boolean vecD; // D is a whole number of vectors: the P V style kernels vectorise over D
    // Per-head arrays hold a block of heads, head-major: head j of the block at j * T * D.
    private final float[] q;    // [heads, Tq, D]
    private final float[] k;    // [heads, Tk, D]
    private final float[] v;    // [heads, Tk, D]
    private final float[] dy;   // [heads, Tq, D]
    private final float[] out1; // [heads, Tq, D] y or dq
    private final float[] out2; // [heads, Tk, D] dk
    private final float[] out3; // [heads, Tk, D] dv
    private final float[] bt;   // [D, tkp] K^T (forward) or V^T (backward) of one head, zero past Tk
    private final float[] ds;   // [Tq, tkp] raw scores / dP / dS of one (batch, head)
    private final float[] lanes = Mem.lanes(); // a vector's lanes, summed in a fixed order

    /**
     * @param blockHeads how many heads the token-major entry points take at once (1 for the head-major ones)
     * @param scratch    where the per-thread arrays come from: the block's activations, so that the blocks that
     *                   recompute in backward share them as they share the rest
     */
    FusedAttention(int[] qPos, int tk, int d, int kPos0, int blockHeads, Activations scratch) {
        int tq = qPos.length;
        this.tq = tq;
        this.tk = tk;
        this.tkp = (tk + L - 1) / L * L;
        this.d = d;
        this.qPos = qPos;
        this.kPos0 = kPos0;
        this.scale = (float) (1.0 / Math.sqrt(d));
        this.vecD = d % L == 0;
        q = scratch.floats(blockHeads * tq * d);
        k = scratch.floats(blockHeads * tk * d);
        v = scratch.floats(blockHeads * tk * d);
        dy = scratch.floats(blockHeads * tq * d);
        out1 = scratch.floats(blockHeads * tq * d);
        out2 = scratch.floats(blockHeads * tk * d);
        out3 = scratch.floats(blockHeads * tk * d);
        bt = scratch.floats(d * tkp);
        ds = scratch.floats(tq * tkp);
    }

    /** Row stride of P. */
    static int paddedKeys(int tk) {
        return (tk + L - 1) / L * L;
    }

    private int visible(int i) {
        return Math.max(0, Math.min(tk, qPos[i] - kPos0 + 1));
    }

    /** The first query row that sees key j (tq when none does). */
    private int firstSeeing(int j) {
        int lo = 0;
        int hi = tq;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (qPos[mid] < kPos0 + j) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    /** Item z: y = softmax(scale q k^T + mask) v; P saved in p at {@code z * Tq * tkp}. */
    void forward(int z, Mem qm, Mem km, Mem vm, Mem ym, float[] p) {
        load(qm, z * tq * d, q, tq * d);
        load(km, z * tk * d, k, tk * d);
        load(vm, z * tk * d, v, tk * d);
        forward(z, 0, p);
        store(out1, ym, z * tq * d, tq * d);
    }

    /**
     * Self-attention straight from a fused projection output, heads [h0, h1) of batch row b (at most
     * blockHeads): reads q, k, v as columns h*D, C + h*D, 2C + h*D of qkv [B*T, 3C], rotating q and k by
     * {@code rope} while loading, and writes the output to columns h*D of y [B*T, C]. No separate RoPE pass.
     * The block is gathered and written back a token row at a time: one head's columns are 128-byte pieces
     * 3 KB apart, which the hardware prefetcher does not follow (loading them head by head took 4x as long).
     */
    void forwardTokenMajor(int b, int h0, int h1, int heads, Mem qkv, Rope rope, Mem y, float[] p) {
        int c = heads * d;
        int td = tq * d;
        gather(b, h0, h1, heads, qkv, rope);
        for (int h = h0; h < h1; h++) {
            forward(b * heads + h, (h - h0) * td, p);
        }
        for (int i = 0; i < tq; i++) {
            store(out1, i * d, (h1 - h0), td, y, (b * tq + i) * c + h0 * d);
        }
    }

    /** The backward of {@link #forwardTokenMajor}: dy [B*T, C] -> columns of dqkv [B*T, 3C], RoPE undone. */
    void backwardTokenMajor(int b, int h0, int h1, int heads, Mem qkv, Rope rope, Mem dym, Mem dqkv, float[] p) {
        int c = heads * d;
        int td = tq * d;
        gather(b, h0, h1, heads, qkv, rope);
        for (int i = 0; i < tq; i++) {
            load(dym, (b * tq + i) * c + h0 * d, dy, (h1 - h0), td, i * d);
        }
        for (int h = h0; h < h1; h++) {
            backward(b * heads + h, (h - h0) * td, p);
        }
        for (int i = 0; i < tq; i++) {
            int row = (b * tq + i) * 3 * c;
            for (int h = h0; h < h1; h++) {
                rope.unrotateInto(out1, (h - h0) * td + i * d, dqkv, row + h * d, i);
            }
            for (int h = h0; h < h1; h++) {
                rope.unrotateInto(out2, (h - h0) * td + i * d, dqkv, row + c + h * d, i);
            }
            store(out3, i * d, (h1 - h0), td, dqkv, row + 2 * c + h0 * d);
        }
    }

    /** q, k (rotated) and v of heads [h0, h1) of batch row b into the block's scratch, a token row at a time. */
    private void gather(int b, int h0, int h1, int heads, Mem qkv, Rope rope) {
        int c = heads * d;
        for (int i = 0; i < tq; i++) {
            int row = (b * tq + i) * 3 * c;
            for (int h = h0; h < h1; h++) {
                int o = (h - h0) * tq * d + i * d;
                rope.rotateInto(qkv, row + h * d, q, o, i);
                rope.rotateInto(qkv, row + c + h * d, k, o, i);
                load(qkv, row + 2 * c + h * d, v, o, d);
            }
        }
    }

    /** Forward of item z from the head at {@code base} of q, k, v in scratch; y left in out1 at base. */
    private void forward(int z, int base, float[] p) {
        transpose(k, base, bt);
        scores(q, base, ds);
        int po = z * tq * tkp;
        for (int i = 0; i < tq; i++) {
            softmaxRow(ds, i * tkp, p, po + i * tkp, visible(i));
        }
        rowsTimes(p, po, v, base, out1);
    }

    /** Item z: dq, dk, dv from dy and the P the last forward of item z saved. */
    void backward(int z, Mem qm, Mem km, Mem vm, Mem dym, Mem dqm, Mem dkm, Mem dvm, float[] p) {
        load(qm, z * tq * d, q, tq * d);
        load(km, z * tk * d, k, tk * d);
        load(vm, z * tk * d, v, tk * d);
        load(dym, z * tq * d, dy, tq * d);
        backward(z, 0, p);
        store(out1, dqm, z * tq * d, tq * d);
        store(out2, dkm, z * tk * d, tk * d);
        store(out3, dvm, z * tk * d, tk * d);
    }

    /**
     * Backward of item z from the head at {@code base} of q, k, v, dy in scratch; dq, dk, dv left in out1,
     * out2, out3 at base.
     */
    private void backward(int z, int base, float[] p) {
        transpose(v, base, bt);
        scores(dy, base, ds); // dP = dY V^T
        int po = z * tq * tkp;
        for (int i = 0; i < tq; i++) {
            softmaxBackwardRow(p, po + i * tkp, ds, i * tkp, visible(i));
        }
        rowsTimes(ds, 0, k, base, out1);  // dQ = dS K
        colsTimes(ds, 0, q, base, out2);  // dK = dS^T Q
        colsTimes(p, po, dy, base, out3); // dV = P^T dY
    }

    /**
     * s[i, j] = a_i . b_j for j below the block's visible length (rounded up to a vector); a's rows from
     * {@code ao}, b as bt.
     */
    private void scores(float[] a, int ao, float[] s) {
        for (int i0 = 0; i0 < tq; i0 += R) {
            int rows = Math.min(R, tq - i0);
            int jEnd = (visible(i0 + rows - 1) + L - 1) / L * L;
            if (rows == R) {
                int a0 = ao + i0 * d;
                int j = 0;
                for (; j + 2 * L <= jEnd; j += 2 * L) {
                    scores4x2(a, a0, s, i0 * tkp + j, j);
                }
                for (; j < jEnd; j += L) {
                    FloatVector c0 = FloatVector.zero(Mem.S);
                    FloatVector c1 = c0;
                    FloatVector c2 = c0;
                    FloatVector c3 = c0;
                    for (int c = 0; c < d; c++) {
                        FloatVector b = FloatVector.fromArray(Mem.S, bt, c * tkp + j);
                        c0 = b.fma(FloatVector.broadcast(Mem.S, a[a0 + c]), c0);
                        c1 = b.fma(FloatVector.broadcast(Mem.S, a[a0 + d + c]), c1);
                        c2 = b.fma(FloatVector.broadcast(Mem.S, a[a0 + 2 * d + c]), c2);
                        c3 = b.fma(FloatVector.broadcast(Mem.S, a[a0 + 3 * d + c]), c3);
                    }
                    c0.intoArray(s, i0 * tkp + j);
                    c1.intoArray(s, (i0 + 1) * tkp + j);
                    c2.intoArray(s, (i0 + 2) * tkp + j);
                    c3.intoArray(s, (i0 + 3) * tkp + j);
                }
                continue;
            }
            for (int r = 0; r < rows; r++) {
                int ar = ao + (i0 + r) * d;
                for (int j = 0; j < jEnd; j += L) {
                    FloatVector acc = FloatVector.zero(Mem.S);
                    for (int c = 0; c < d; c++) {
                        FloatVector b = FloatVector.fromArray(Mem.S, bt, c * tkp + j);
                        acc = b.fma(FloatVector.broadcast(Mem.S, a[ar + c]), acc);
                    }
                    acc.intoArray(s, (i0 + r) * tkp + j);
                }
            }
        }
    }

    /** Scores of 4 rows (from a[a0]) and 2 vectors of keys (from column j0): 8 accumulators. */
    private void scores4x2(float[] a, int a0, float[] s, int so, int j0) {
        FloatVector c00 = FloatVector.zero(Mem.S);
        FloatVector c01 = c00;
        FloatVector c10 = c00;
        FloatVector c11 = c00;
        FloatVector c20 = c00;
        FloatVector c21 = c00;
        FloatVector c30 = c00;
        FloatVector c31 = c00;
        for (int c = 0; c < d; c++) {
            FloatVector b0 = FloatVector.fromArray(Mem.S, bt, c * tkp + j0);
            FloatVector b1 = FloatVector.fromArray(Mem.S, bt, c * tkp + j0 + L);
            FloatVector x0 = FloatVector.broadcast(Mem.S, a[a0 + c]);
            FloatVector x1 = FloatVector.broadcast(Mem.S, a[a0 + d + c]);
            FloatVector x2 = FloatVector.broadcast(Mem.S, a[a0 + 2 * d + c]);
            FloatVector x3 = FloatVector.broadcast(Mem.S, a[a0 + 3 * d + c]);
            c00 = b0.fma(x0, c00);
            c01 = b1.fma(x0, c01);
            c10 = b0.fma(x1, c10);
            c11 = b1.fma(x1, c11);
            c20 = b0.fma(x2, c20);
            c21 = b1.fma(x2, c21);
            c30 = b0.fma(x3, c30);
            c31 = b1.fma(x3, c31);
        }
        c00.intoArray(s, so);
        c01.intoArray(s, so + L);
        c10.intoArray(s, so + tkp);
        c11.intoArray(s, so + tkp + L);
        c20.intoArray(s, so + 2 * tkp);
        c21.intoArray(s, so + 2 * tkp + L);
        c30.intoArray(s, so + 3 * tkp);
        c31.intoArray(s, so + 3 * tkp + L);
    }

    /** out[i] = sum_j m[mo + i*tkp + j] b[j] over the visible j (m is zero past them); b and out from base. */
    private void rowsTimes(float[] m, int mo, float[] b, int base, float[] out) {
        for (int i0 = 0; i0 < tq; i0 += R) {
            int rows = Math.min(R, tq - i0);
            int n = visible(i0 + rows - 1);
            if (rows == R && vecD) {
                int m0 = mo + i0 * tkp;
                int c = 0;
                for (; c + 2 * L <= d; c += 2 * L) {
                    rows4x2(m, m0, n, b, base + c, out, base + i0 * d + c);
                }
                for (; c < d; c += L) {
                    FloatVector c0 = FloatVector.zero(Mem.S);
                    FloatVector c1 = c0;
                    FloatVector c2 = c0;
                    FloatVector c3 = c0;
                    for (int j = 0; j < n; j++) {
                        FloatVector bv = FloatVector.fromArray(Mem.S, b, base + j * d + c);
                        c0 = bv.fma(FloatVector.broadcast(Mem.S, m[m0 + j]), c0);
                        c1 = bv.fma(FloatVector.broadcast(Mem.S, m[m0 + tkp + j]), c1);
                        c2 = bv.fma(FloatVector.broadcast(Mem.S, m[m0 + 2 * tkp + j]), c2);
                        c3 = bv.fma(FloatVector.broadcast(Mem.S, m[m0 + 3 * tkp + j]), c3);
                    }
                    c0.intoArray(out, base + i0 * d + c);
                    c1.intoArray(out, base + (i0 + 1) * d + c);
                    c2.intoArray(out, base + (i0 + 2) * d + c);
                    c3.intoArray(out, base + (i0 + 3) * d + c);
                }
                continue;
            }
            for (int i = i0; i < i0 + rows; i++) {
                for (int c = 0; c < d; c++) {
                    float acc = 0f;
                    for (int j = 0; j < n; j++) {
                        acc += m[mo + i * tkp + j] * b[base + j * d + c];
                    }
                    out[base + i * d + c] = acc;
                }
            }
        }
    }

    /** 4 rows of m (from m0) times b's rows j < n, columns c0..c0+2L (c0 includes b's base): 8 accumulators. */
    private void rows4x2(float[] m, int m0, int n, float[] b, int c0, float[] out, int oo) {
        FloatVector c00 = FloatVector.zero(Mem.S);
        FloatVector c01 = c00;
        FloatVector c10 = c00;
        FloatVector c11 = c00;
        FloatVector c20 = c00;
        FloatVector c21 = c00;
        FloatVector c30 = c00;
        FloatVector c31 = c00;
        for (int j = 0; j < n; j++) {
            FloatVector b0 = FloatVector.fromArray(Mem.S, b, j * d + c0);
            FloatVector b1 = FloatVector.fromArray(Mem.S, b, j * d + c0 + L);
            FloatVector x0 = FloatVector.broadcast(Mem.S, m[m0 + j]);
            FloatVector x1 = FloatVector.broadcast(Mem.S, m[m0 + tkp + j]);
            FloatVector x2 = FloatVector.broadcast(Mem.S, m[m0 + 2 * tkp + j]);
            FloatVector x3 = FloatVector.broadcast(Mem.S, m[m0 + 3 * tkp + j]);
            c00 = b0.fma(x0, c00);
            c01 = b1.fma(x0, c01);
            c10 = b0.fma(x1, c10);
            c11 = b1.fma(x1, c11);
            c20 = b0.fma(x2, c20);
            c21 = b1.fma(x2, c21);
            c30 = b0.fma(x3, c30);
            c31 = b1.fma(x3, c31);
        }
        // Stored here, not through a helper taking the 8 vectors: where C2 leaves such a call out of line (it did
        // in cols4x2, whose profile had the call after its long loop as cold), it boxes the accumulators, and
        // the box travels back through the loop's phis to a new vector at every fma.
        c00.intoArray(out, oo);
        c01.intoArray(out, oo + L);
        c10.intoArray(out, oo + d);
        c11.intoArray(out, oo + d + L);
        c20.intoArray(out, oo + 2 * d);
        c21.intoArray(out, oo + 2 * d + L);
        c30.intoArray(out, oo + 3 * d);
        c31.intoArray(out, oo + 3 * d + L);
    }

    /**
     * 4 columns (from j0) of m's rows i >= iStart, transposed, times b's rows, columns c0..c0+2L (c0 includes
     * b's base).
     */
    private void cols4x2(float[] m, int mo, int j0, int iStart, float[] b, int c0, float[] out, int oo) {
        FloatVector c00 = FloatVector.zero(Mem.S);
        FloatVector c01 = c00;
        FloatVector c10 = c00;
        FloatVector c11 = c00;
        FloatVector c20 = c00;
        FloatVector c21 = c00;
        FloatVector c30 = c00;
        FloatVector c31 = c00;
        for (int i = iStart; i < tq; i++) {
            FloatVector b0 = FloatVector.fromArray(Mem.S, b, i * d + c0);
            FloatVector b1 = FloatVector.fromArray(Mem.S, b, i * d + c0 + L);
            int mi = mo + i * tkp + j0;
            FloatVector x0 = FloatVector.broadcast(Mem.S, m[mi]);
            FloatVector x1 = FloatVector.broadcast(Mem.S, m[mi + 1]);
            FloatVector x2 = FloatVector.broadcast(Mem.S, m[mi + 2]);
            FloatVector x3 = FloatVector.broadcast(Mem.S, m[mi + 3]);
            c00 = b0.fma(x0, c00);
            c01 = b1.fma(x0, c01);
            c10 = b0.fma(x1, c10);
            c11 = b1.fma(x1, c11);
            c20 = b0.fma(x2, c20);
            c21 = b1.fma(x2, c21);
            c30 = b0.fma(x3, c30);
            c31 = b1.fma(x3, c31);
        }
        c00.intoArray(out, oo); // in line, as in rows4x2
        c01.intoArray(out, oo + L);
        c10.intoArray(out, oo + d);
        c11.intoArray(out, oo + d + L);
        c20.intoArray(out, oo + 2 * d);
        c21.intoArray(out, oo + 2 * d + L);
        c30.intoArray(out, oo + 3 * d);
        c31.intoArray(out, oo + 3 * d + L);
    }

    /**
     * out[j] = sum_i m[mo + i*tkp + j] b[i] over the queries i that see key j (m is zero elsewhere); b and out
     * from base.
     */
    private void colsTimes(float[] m, int mo, float[] b, int base, float[] out) {
        for (int j0 = 0; j0 < tk; j0 += R) {
            int cols = Math.min(R, tk - j0);
            int iStart = firstSeeing(j0); // rows before see none of j0..
            if (cols == R && vecD) {
                int c = 0;
                for (; c + 2 * L <= d; c += 2 * L) {
                    cols4x2(m, mo, j0, iStart, b, base + c, out, base + j0 * d + c);
                }
                for (; c < d; c += L) {
                    FloatVector c0 = FloatVector.zero(Mem.S);
                    FloatVector c1 = c0;
                    FloatVector c2 = c0;
                    FloatVector c3 = c0;
                    for (int i = iStart; i < tq; i++) {
                        FloatVector bv = FloatVector.fromArray(Mem.S, b, base + i * d + c);
                        int mi = mo + i * tkp + j0;
                        c0 = bv.fma(FloatVector.broadcast(Mem.S, m[mi]), c0);
                        c1 = bv.fma(FloatVector.broadcast(Mem.S, m[mi + 1]), c1);
                        c2 = bv.fma(FloatVector.broadcast(Mem.S, m[mi + 2]), c2);
                        c3 = bv.fma(FloatVector.broadcast(Mem.S, m[mi + 3]), c3);
                    }
                    c0.intoArray(out, base + j0 * d + c);
                    c1.intoArray(out, base + (j0 + 1) * d + c);
                    c2.intoArray(out, base + (j0 + 2) * d + c);
                    c3.intoArray(out, base + (j0 + 3) * d + c);
                }
                continue;
            }
            for (int j = j0; j < j0 + cols; j++) {
                for (int c = 0; c < d; c++) {
                    float acc = 0f;
                    for (int i = iStart; i < tq; i++) {
                        acc += m[mo + i * tkp + j] * b[base + i * d + c];
                    }
                    out[base + j * d + c] = acc;
                }
            }
        }
    }

    /**
     * p[po..po+tkp) = softmax(scale * s[so..so+n)) on the visible prefix n, 0 on the rest. Whole vectors
     * only: the last partial one is computed in full (s holds finite scores past n up to the vector end) and
     * its hidden lanes are masked arithmetically ({@link #HIDE}, {@link #KEEP}), so no lane falls back to a
     * scalar exp and no vector mask is needed.
     */
    private void softmaxRow(float[] s, int so, float[] p, int po, int n) {
        int full = Mem.S.loopBound(n);
        int tail = n - full; // visible lanes of the partial vector at full, 0 if none
        FloatVector vmax = FloatVector.broadcast(Mem.S, Float.NEGATIVE_INFINITY);
        for (int j = 0; j < full; j += L) {
            vmax = vmax.max(FloatVector.fromArray(Mem.S, s, so + j));
        }
        if (tail > 0) {
            FloatVector hide = FloatVector.fromArray(Mem.S, HIDE, tail * L);
            vmax = vmax.max(FloatVector.fromArray(Mem.S, s, so + full).add(hide));
        }
        float max = vmax.reduceLanes(VectorOperators.MAX); // order-free: the same in every JIT tier
        float sum = exponentials(s, so, p, po, full, tail, max);
        int end = tail > 0 ? full + L : full;
        FloatVector vinv = FloatVector.broadcast(Mem.S, 1f / sum);
        for (int j = 0; j < end; j += L) {
            FloatVector.fromArray(Mem.S, p, po + j).mul(vinv).intoArray(p, po + j);
        }
        clearNextVector(p, po + end, po + tkp);
    }

    /**
     * p[po + j] = exp(scale * (s[so + j] - max)) over the whole vectors and the partial one of {@link #softmaxRow};
     * returns their sum. A method of its own: inside softmaxRow, C2 ran out of inlining budget and boxed the sum.
     */
    private float exponentials(float[] s, int so, float[] p, int po, int full, int tail, float max) {
        FloatVector vsc = FloatVector.broadcast(Mem.S, scale);
        FloatVector vshift = FloatVector.broadcast(Mem.S, -max * scale);
        FloatVector vsum = FloatVector.zero(Mem.S);
        int end = tail > 0 ? full + L : full;
        for (int j = 0; j < end; j += L) {
            int keep = j < full ? L : tail; // one loop for whole and partial vectors: exp inlined once
            FloatVector e = Mem.exp(FloatVector.fromArray(Mem.S, s, so + j).fma(vsc, vshift))
                    .mul(FloatVector.fromArray(Mem.S, KEEP, keep * L));
            e.intoArray(p, po + j);
            vsum = vsum.add(e);
        }
        vsum.intoArray(lanes, 0);
        return Mem.sumLanes(lanes);
    }

    /**
     * In place: ds = scale * P * (dP - sum(P * dP)) on the visible prefix n, 0 on the rest. Whole vectors:
     * P is zero past n and dP finite there, so the lanes past n add nothing and come out zero.
     */
    private void softmaxBackwardRow(float[] p, int po, float[] s, int so, int n) {
        int end = (n + L - 1) / L * L;
        FloatVector acc = FloatVector.zero(Mem.S);
        for (int j = 0; j < end; j += L) {
            acc = FloatVector.fromArray(Mem.S, p, po + j).fma(FloatVector.fromArray(Mem.S, s, so + j), acc);
        }
        acc.intoArray(lanes, 0);
        FloatVector vdot = FloatVector.broadcast(Mem.S, Mem.sumLanes(lanes));
        FloatVector vsc = FloatVector.broadcast(Mem.S, scale);
        for (int j = 0; j < end; j += L) {
            FloatVector pv = FloatVector.fromArray(Mem.S, p, po + j);
            pv.mul(FloatVector.fromArray(Mem.S, s, so + j).sub(vdot)).mul(vsc).intoArray(s, so + j);
        }
        clearNextVector(s, so + end, so + tkp);
    }

    /**
     * Zeroes the vector after a row's visible part, [from, min(from + L, rowEnd)). The 4-row and 4-column
     * blocks read up to 3 lanes past a row's visible length, never further, and nothing writes past that
     * vector (a row's visible length is the same at every call), so the rest of the row stays zero from
     * construction and need not be cleared again: that was a third of the forward's writes to P.
     */
    private static void clearNextVector(float[] m, int from, int rowEnd) {
        java.util.Arrays.fill(m, from, Math.min(from + L, rowEnd), 0f);
    }

    /** bt[c, j] = x[xo + j*D + c] for j < Tk; the padding columns stay zero from construction. */
    private void transpose(float[] x, int xo, float[] t) {
        for (int j = 0; j < tk; j++) {
            for (int c = 0; c < d; c++) {
                t[c * tkp + j] = x[xo + j * d + c];
            }
        }
    }

    private static void load(Mem m, int off, float[] dst, int n) {
        load(m, off, dst, 0, n);
    }

    private static void load(Mem m, int off, float[] dst, int dOff, int n) {
        int i = 0;
        for (int b = Mem.S.loopBound(n); i < b; i += L) {
            m.vec(off + i).intoArray(dst, dOff + i);
        }
        for (; i < n; i++) {
            dst[dOff + i] = m.getF(off + i);
        }
    }

    /** {@code pieces} runs of D values, {@code stride} apart in dst from dOff, from consecutive places in m. */
    private void load(Mem m, int off, float[] dst, int pieces, int stride, int dOff) {
        for (int j = 0; j < pieces; j++) {
            load(m, off + j * d, dst, dOff + j * stride, d);
        }
    }

    /** {@code pieces} runs of D values, {@code stride} apart in src from so, to consecutive places in m. */
    private void store(float[] src, int so, int pieces, int stride, Mem m, int off) {
        for (int j = 0; j < pieces; j++) {
            store(src, so + j * stride, m, off + j * d, d);
        }
    }

    private static void store(float[] src, Mem m, int off, int n) {
        store(src, 0, m, off, n);
    }

    private static void store(float[] src, int so, Mem m, int off, int n) {
        int i = 0;
        for (int b = Mem.S.loopBound(n); i < b; i += L) {
            m.put(FloatVector.fromArray(Mem.S, src, so + i), off + i);
        }
        for (; i < n; i++) {
            m.setF(off + i, src[so + i]);
        }
    }
}
