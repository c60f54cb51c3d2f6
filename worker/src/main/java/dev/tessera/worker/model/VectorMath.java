package dev.tessera.worker.model;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Vector kernels' transcendental and reduction steps built only from correctly rounded lane operations (add,
 * mul, fma, shifts, reinterpretation). The Vector API's own {@code EXP} and floating-point
 * {@code reduceLanes(ADD)} round differently in the interpreter, C1 and C2 (C2 calls an intrinsic library and
 * may reorder the reduction), so results changed as the JIT warmed up and a resumed run stopped matching the
 * uninterrupted one bit for bit. These give the same bits in every compilation mode.
 */
final class VectorMath {

    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    /** 1.5 * 2^23: adding it rounds a float to the nearest integer and leaves that integer in the low bits. */
    private static final float ROUNDER = 12582912f;
    private static final int ROUNDER_BITS = Float.floatToRawIntBits(ROUNDER);
    /** Below this exp(x) is under 2^-125; clamping keeps 2^n a normal float so the exponent trick holds. */
    private static final float MIN_ARG = -86.0f;
    private static final float MAX_ARG = 88.0f;

    private VectorMath() {
    }

    /**
     * e^x per lane, within 2 ulp of {@link Math#exp} for x in [-86, 88] (Cephes expf: x = n ln2 + r,
     * |r| <= ln2/2, a degree-6 polynomial for e^r, then 2^n added to the exponent bits).
     */
    static FloatVector exp(FloatVector x) {
        FloatVector c = x.max(MIN_ARG).min(MAX_ARG);
        FloatVector t = c.fma(LOG2E, ROUNDER);          // n + 1.5*2^23, exactly
        FloatVector n = t.sub(ROUNDER);
        FloatVector r = c.sub(n.mul(LN2_HI));           // exact: LN2_HI has few significant bits
        r = r.sub(n.mul(LN2_LO));
        FloatVector p = r.broadcast(1.9875691500e-4f);
        p = p.fma(r, r.broadcast(1.3981999507e-3f));
        p = p.fma(r, r.broadcast(8.3334519073e-3f));
        p = p.fma(r, r.broadcast(4.1665795894e-2f));
        p = p.fma(r, r.broadcast(1.6666665459e-1f));
        p = p.fma(r, r.broadcast(5.0000001201e-1f));
        p = p.fma(r.mul(r), r).add(1.0f);
        IntVector exponent = ((IntVector) t.reinterpretAsInts()).sub(ROUNDER_BITS).lanewise(VectorOperators.LSHL, 23);
        return ((IntVector) p.reinterpretAsInts()).add(exponent).reinterpretAsFloats();
    }

    /** The sum of the lanes, added first to last: the same order whatever compiled it. */
    static float sum(FloatVector v) {
        float s = v.lane(0);
        for (int i = 1; i < v.length(); i++) {
            s += v.lane(i);
        }
        return s;
    }
}
