package dev.tessera.worker.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/** The tier-independent vector exp and lane sum the float32 kernels use instead of EXP / reduceLanes(ADD). */
class MemTest {

    @Test
    void expIsWithinTwoUlpOfMathExp() {
        float[] x = new float[Mem.L];
        double worst = 0;
        for (int k = 0; k < 200_000; k++) {
            for (int i = 0; i < x.length; i++) {
                x[i] = -87f + 175f * ((k * x.length + i) / (200_000f * x.length));
            }
            float[] got = Mem.exp(FloatVector.fromArray(Mem.S, x, 0)).toArray();
            for (int i = 0; i < x.length; i++) {
                double want = Math.exp(x[i]);
                worst = Math.max(worst, Math.abs(got[i] - want) / want);
            }
        }
        assertTrue(worst < 2.5e-7, "max relative error " + worst);
    }

    @Test
    void expClampsOutOfRangeInputsWithoutOverflowOrNaN() {
        float[] x = new float[Mem.L];
        java.util.Arrays.fill(x, -1000f);
        x[0] = 1000f;
        float[] got = Mem.exp(FloatVector.fromArray(Mem.S, x, 0)).toArray();
        assertEquals((float) Math.exp(88), got[0], 1e32f);
        assertTrue(got[1] >= 0 && got[1] < 1e-37f);
        assertEquals(1f, Mem.exp(FloatVector.zero(Mem.S)).lane(0));
    }

    @Test
    void sumAddsLanesInLaneOrder() {
        float[] x = new float[Mem.L];
        float want = 0f;
        for (int i = 0; i < x.length; i++) {
            x[i] = (i % 2 == 0 ? 1e8f : 1f) / (i + 1);
            want += x[i];
        }
        assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(Mem.sumLanes(x)));
    }

    @Test
    void bulkReadAndWriteAddressTheArraysElements() {
        INDArray whole = Nd4j.arange(0, 40).castTo(DataType.FLOAT);
        Mem view = new Mem(Mem.view(whole, 7, 3, 5)); // elements 7..21 as [3, 5]
        float[] row = new float[5];
        view.read(5, row, 0, 5);
        assertArrayEquals(new float[] {12, 13, 14, 15, 16}, row);
        float[] src = {-1, -2, -3};
        view.write(src, 1, 13, 2); // view elements 13, 14 = whole's 20, 21
        assertArrayEquals(new float[] {19, -2, -3, 22}, whole.get(NDArrayIndex.interval(19, 23)).toFloatVector());
    }
}
