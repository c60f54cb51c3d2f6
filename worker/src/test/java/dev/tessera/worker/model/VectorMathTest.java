package dev.tessera.worker.model;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VectorMathTest {

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    @Test
    void expIsWithinTwoUlpOfMathExp() {
        float[] x = new float[S.length()];
        float[] y = new float[S.length()];
        double worst = 0;
        for (int i = 0; i < 200_000; i++) {
            for (int l = 0; l < x.length; l++) {
                x[l] = -86f + 174f * ((i * x.length + l) / (200_000f * x.length));
            }
            VectorMath.exp(FloatVector.fromArray(S, x, 0)).intoArray(y, 0);
            for (int l = 0; l < x.length; l++) {
                float exact = (float) Math.exp(x[l]);
                worst = Math.max(worst, Math.abs(y[l] - exact) / Math.ulp(exact));
            }
        }
        assertTrue(worst <= 2.0, "worst error " + worst + " ulp");
    }

    @Test
    void expSaturatesInsteadOfOverflowingTheExponentBits() {
        float[] x = new float[S.length()];
        x[0] = -1000f;
        x[1 % x.length] = 0f;
        float[] y = new float[x.length];
        VectorMath.exp(FloatVector.fromArray(S, x, 0)).intoArray(y, 0);
        assertTrue(y[0] >= 0 && y[0] < 1e-37f, "exp(-1000) = " + y[0]);
        assertEquals(1f, y[1 % x.length]);
    }

    @Test
    void sumAddsTheLanesFirstToLast() {
        float[] x = new float[S.length()];
        float expected = 0;
        for (int l = 0; l < x.length; l++) {
            x[l] = (float) Math.scalb(1.0 + l / 7.0, (l % 5) * 9 - 20);
            expected = l == 0 ? x[0] : expected + x[l];
        }
        assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(VectorMath.sum(FloatVector.fromArray(S, x, 0))));
    }
}
