package dev.tessera.optimizers;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class GradNormTest {

    @Test
    void sumsSquaresOfAnOffsetView() {
        INDArray flat = Nd4j.createFromArray(100f, 3f, 4f, 100f);
        INDArray view = flat.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(1, 3));
        assertEquals(25.0, GradNorm.sumOfSquares(view), 0.0);
    }

    @Test
    void clipScaleBringsTheNormToTheLimit() {
        assertEquals(1.0, GradNorm.clipScale(0.5, 1.0));
        assertEquals(1.0, GradNorm.clipScale(5.0, 0.0));
        assertEquals(1.0 / (4.0 + 1e-6), GradNorm.clipScale(4.0, 1.0), 1e-15);
    }

    /** Chunked over threads, the sum matches a plain double loop to rounding, and repeats bit for bit. */
    @Test
    void chunkedSumMatchesPlainSumAndRepeats() {
        int n = 3 * GradNorm.CHUNK + 12_345;
        float[] g = new float[n];
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(4);
        double want = 0;
        for (int i = 0; i < n; i++) {
            g[i] = (float) rnd.nextGaussian();
            want += (double) g[i] * g[i];
        }
        INDArray flat = Nd4j.createFromArray(g);
        double got = GradNorm.sumOfSquares(flat);
        assertEquals(want, got, 1e-12 * want);
        assertEquals(Double.doubleToLongBits(got), Double.doubleToLongBits(GradNorm.sumOfSquares(flat)));
    }
}
