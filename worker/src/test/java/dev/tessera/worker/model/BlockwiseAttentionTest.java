package dev.tessera.worker.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * ALGORITHMS.md 8, oracle 3: the log-sum-exp merge does not depend on the order or grouping of the blocks (beyond
 * rounding), a block every query masks is the identity with no NaN, and merging blocks A and B is attention over A
 * and B together, forward and backward (against {@link AttentionCore}); and the block backward against float64
 * central differences.
 */
class BlockwiseAttentionTest {

    private static final int BH = 4;
    private static final int D = 8;
    private static final int T = 12;
    // Keys as a zig-zag pair of ranks holds them: A = chunks 0 and 3 of 4, B = chunks 1 and 2.
    private static final int[] A = {0, 1, 2, 9, 10, 11};
    private static final int[] B = {3, 4, 5, 6, 7, 8};
    // Queries at 1 and 2 see nothing of B: rows a block masks entirely.
    private static final int[] QUERIES = {1, 2, 4, 7, 8, 11};

    @Test
    void theOrderOfTheBlocksChangesOnlyRounding() {
        BlockwiseAttention kernel = new BlockwiseAttention(DataType.DOUBLE, BH, QUERIES.length, 4, D);
        INDArray q = randn(1, QUERIES.length);
        int[][] keys = {{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}}; // the third is masked for the first 4 queries
        INDArray[][] kv = new INDArray[3][];
        for (int b = 0; b < 3; b++) {
            kv[b] = new INDArray[] {randn(10 + b, 4), randn(20 + b, 4)};
        }
        INDArray[] first = null;
        for (int[] order : new int[][] {{0, 1, 2}, {1, 0, 2}, {2, 1, 0}, {1, 2, 0}}) {
            INDArray o = Nd4j.create(DataType.DOUBLE, BH, QUERIES.length, D);
            INDArray lse = Nd4j.create(DataType.DOUBLE, BH, QUERIES.length);
            BlockwiseAttention.start(o, lse);
            for (int b : order) {
                kernel.forward(q, QUERIES, kv[b][0], kv[b][1], keys[b], o, lse);
            }
            assertFalse(Double.isNaN(o.sumNumber().doubleValue()));
            if (first == null) {
                first = new INDArray[] {o, lse};
            } else {
                assertTrue(maxAbs(first[0], o) <= 1e-14, "O: " + maxAbs(first[0], o));
                assertTrue(maxAbs(first[1], lse) <= 1e-14, "LSE: " + maxAbs(first[1], lse));
            }
        }
    }

    @Test
    void aBlockEveryQueryMasksIsTheIdentityWithNoNan() {
        BlockwiseAttention kernel = new BlockwiseAttention(DataType.DOUBLE, BH, 3, 3, D);
        int[] queries = {0, 1, 2};
        INDArray q = randn(1, 3);
        INDArray o = Nd4j.create(DataType.DOUBLE, BH, 3, D);
        INDArray lse = Nd4j.create(DataType.DOUBLE, BH, 3);
        BlockwiseAttention.start(o, lse);
        kernel.forward(q, queries, randn(2, 3), randn(3, 3), new int[] {5, 6, 7}, o, lse); // onto nothing: nothing
        assertEquals(0.0, o.amaxNumber().doubleValue());
        assertEquals(Double.NEGATIVE_INFINITY, lse.maxNumber().doubleValue());
        kernel.forward(q, queries, randn(4, 3), randn(5, 3), new int[] {0, 1, 2}, o, lse);
        INDArray o0 = o.dup();
        INDArray lse0 = lse.dup();
        kernel.forward(q, queries, randn(6, 3), randn(7, 3), new int[] {3, 4, 5}, o, lse);
        assertArrayEquals(o0.data().asDouble(), o.data().asDouble(), 0.0);
        assertArrayEquals(lse0.data().asDouble(), lse.data().asDouble(), 0.0);
        assertFalse(Double.isNaN(o.sumNumber().doubleValue()) || Double.isNaN(lse.sumNumber().doubleValue()));
    }

    @Test
    void mergingTwoBlocksIsAttentionOverBothForwardAndBackward() {
        check(DataType.DOUBLE, 1e-13);
        check(DataType.FLOAT, 1e-5);
    }

    /** Queries at QUERIES against keys 0..T-1 as blocks A and B, in either order: y, dq, dk, dv as AttentionCore's. */
    private static void check(DataType dt, double tolerance) {
        INDArray k = randn(32, T);
        INDArray v = randn(33, T);
        INDArray dy = randn(34, QUERIES.length);
        INDArray q = rows(randn(31, T), QUERIES);
        AttentionCore whole = new AttentionCore(DataType.DOUBLE, BH, 2, QUERIES, T, D, 0, null, Activations.own());
        INDArray y = Nd4j.create(DataType.DOUBLE, BH, QUERIES.length, D);
        INDArray dq = Nd4j.create(DataType.DOUBLE, BH, QUERIES.length, D);
        INDArray dk = Nd4j.create(DataType.DOUBLE, BH, T, D);
        INDArray dv = Nd4j.create(DataType.DOUBLE, BH, T, D);
        whole.forward(q, k, v, y);
        whole.backward(q, k, v, dy, dq, dk, dv);

        BlockwiseAttention kernel = new BlockwiseAttention(dt, BH, QUERIES.length, A.length, D);
        INDArray qx = q.castTo(dt);
        INDArray dyx = dy.castTo(dt);
        int[][] positions = {A, B};
        for (int[] order : new int[][] {{0, 1}, {1, 0}}) {
            String what = dt + " order " + order[0] + order[1];
            INDArray o = Nd4j.create(dt, BH, QUERIES.length, D);
            INDArray lse = Nd4j.create(dt, BH, QUERIES.length);
            BlockwiseAttention.start(o, lse);
            for (int b : order) {
                kernel.forward(qx, QUERIES, rows(k, positions[b]).castTo(dt), rows(v, positions[b]).castTo(dt),
                        positions[b], o, lse);
            }
            assertClose(y, o, tolerance, what + " y");
            INDArray delta = Nd4j.create(dt, BH, QUERIES.length);
            BlockwiseAttention.delta(dyx, o, delta);
            INDArray gq = Nd4j.create(dt, BH, QUERIES.length, D);
            for (int b : order) {
                INDArray gk = Nd4j.create(dt, BH, A.length, D);
                INDArray gv = Nd4j.create(dt, BH, A.length, D);
                kernel.backward(qx, QUERIES, rows(k, positions[b]).castTo(dt), rows(v, positions[b]).castTo(dt),
                        positions[b], dyx, delta, lse, gq, gk, gv);
                assertClose(rows(dk, positions[b]), gk, tolerance, what + " dk of block " + b);
                assertClose(rows(dv, positions[b]), gv, tolerance, what + " dv of block " + b);
            }
            assertClose(dq, gq, tolerance, what + " dq");
        }
    }

    @Test
    void blockBackwardMatchesFiniteDifferences() {
        int[] qPos = {2, 3, 6, 7};
        int[] kPos = {1, 3, 4, 6, 9};
        BlockwiseAttention kernel = new BlockwiseAttention(DataType.DOUBLE, BH, qPos.length, kPos.length, D);
        INDArray q = randn(41, qPos.length);
        INDArray k = randn(42, kPos.length);
        INDArray v = randn(43, kPos.length);
        INDArray r = randn(44, qPos.length);
        INDArray o = Nd4j.create(DataType.DOUBLE, BH, qPos.length, D);
        INDArray lse = Nd4j.create(DataType.DOUBLE, BH, qPos.length);
        BlockwiseAttention.start(o, lse);
        kernel.forward(q, qPos, k, v, kPos, o, lse);
        INDArray delta = Nd4j.create(DataType.DOUBLE, BH, qPos.length);
        BlockwiseAttention.delta(r, o, delta);
        INDArray[] grads = {Nd4j.create(DataType.DOUBLE, BH, qPos.length, D),
                Nd4j.create(DataType.DOUBLE, BH, kPos.length, D), Nd4j.create(DataType.DOUBLE, BH, kPos.length, D)};
        kernel.backward(q, qPos, k, v, kPos, r, delta, lse, grads[0], grads[1], grads[2]);
        INDArray[] inputs = {q, k, v};
        double h = 1e-6;
        for (int which = 0; which < 3; which++) {
            INDArray x = inputs[which];
            for (int i = 0; i < x.length(); i += 3) {
                double x0 = x.getDouble(i);
                x.putScalar(i, x0 + h);
                double plus = loss(kernel, q, qPos, k, v, kPos, r);
                x.putScalar(i, x0 - h);
                double minus = loss(kernel, q, qPos, k, v, kPos, r);
                x.putScalar(i, x0);
                double numeric = (plus - minus) / (2 * h);
                assertEquals(numeric, grads[which].getDouble(i), 1e-7 * Math.max(1, Math.abs(numeric)),
                        "input " + which + " element " + i);
            }
        }
    }

    private static double loss(BlockwiseAttention kernel, INDArray q, int[] qPos, INDArray k, INDArray v, int[] kPos,
                               INDArray r) {
        INDArray o = Nd4j.create(DataType.DOUBLE, q.size(0), q.size(1), D);
        INDArray lse = Nd4j.create(DataType.DOUBLE, q.size(0), q.size(1));
        BlockwiseAttention.start(o, lse);
        kernel.forward(q, qPos, k, v, kPos, o, lse);
        return o.mul(r).sumNumber().doubleValue();
    }

    private static double maxAbs(INDArray a, INDArray b) {
        double m = 0;
        double[] x = a.data().asDouble();
        double[] y = b.data().asDouble();
        for (int i = 0; i < x.length; i++) {
            if (x[i] != y[i]) { // -inf == -inf
                m = Math.max(m, Math.abs(x[i] - y[i]));
            }
        }
        return m;
    }

    private static void assertClose(INDArray expected, INDArray actual, double tolerance, String what) {
        double error = expected.sub(actual.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
        assertTrue(error <= tolerance, what + ": max abs error " + error);
    }

    private static INDArray randn(long seed, int t) {
        Nd4j.getRandom().setSeed(seed);
        return Nd4j.randn(DataType.DOUBLE, BH, t, D);
    }

    /** a[:, positions, :] as a new array. */
    private static INDArray rows(INDArray a, int[] positions) {
        INDArray out = Nd4j.create(a.dataType(), a.size(0), positions.length, a.size(2));
        for (int t = 0; t < positions.length; t++) {
            out.get(NDArrayIndex.all(), NDArrayIndex.point(t), NDArrayIndex.all())
                    .assign(a.get(NDArrayIndex.all(), NDArrayIndex.point(positions[t]), NDArrayIndex.all()));
        }
        return out;
    }
}
