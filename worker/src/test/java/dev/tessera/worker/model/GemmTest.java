package dev.tessera.worker.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** The direct cblas gemm against a triple loop, for every transpose pair, on views at an offset. */
class GemmTest {
    @Test
    void everyTransposePairMatchesTheNaiveProductOnOffsetViews() {
        assertEveryTransposePairMatches();
    }

    /** The test's body, which {@link GemmKernelMain} also runs in a child JVM per OpenBLAS kernel. */
    static void assertEveryTransposePairMatches() {
        SplittableRandom rng = new SplittableRandom(7);
        for (DataType dt : new DataType[] {DataType.FLOAT, DataType.DOUBLE}) {
            for (boolean ta : new boolean[] {false, true}) {
                for (boolean tb : new boolean[] {false, true}) {
                    int m = 5;
                    int n = 7;
                    int k = 3;
                    INDArray a = view(rng, dt, ta ? k : m, ta ? m : k);
                    INDArray b = view(rng, dt, tb ? n : k, tb ? k : n);
                    INDArray c = view(rng, dt, m, n);
                    INDArray before = c.dup();
                    Gemm.gemm(a, b, c, ta, tb, 0.5);
                    double tolerance = dt == DataType.FLOAT ? 1e-5 : 1e-12;
                    for (int i = 0; i < m; i++) {
                        for (int j = 0; j < n; j++) {
                            double want = 0.5 * before.getDouble(i, j);
                            for (int p = 0; p < k; p++) {
                                want += (ta ? a.getDouble(p, i) : a.getDouble(i, p))
                                        * (tb ? b.getDouble(j, p) : b.getDouble(p, j));
                            }
                            assertEquals(want, c.getDouble(i, j), tolerance, dt + " ta=" + ta + " tb=" + tb);
                        }
                    }
                }
            }
        }
    }

    @Test
    void mismatchedShapesAreRefused() {
        INDArray a = Nd4j.create(DataType.FLOAT, 4, 3);
        INDArray b = Nd4j.create(DataType.FLOAT, 4, 2);
        INDArray c = Nd4j.create(DataType.FLOAT, 4, 2);
        assertThrows(IllegalArgumentException.class, () -> Gemm.gemm(a, b, c, false, false, 0.0));
    }

    /** A [rows, cols] matrix of random values, rows 2.. of a larger buffer (a view with an offset). */
    private static INDArray view(SplittableRandom rng, DataType dt, int rows, int cols) {
        INDArray whole = Nd4j.create(dt, rows + 2, cols);
        for (int i = 0; i < whole.length(); i++) {
            whole.putScalar(i, rng.nextDouble(-1, 1));
        }
        return Mem.rows(whole, 2, rows);
    }
}
