package dev.tessera.worker.model;

import dev.tessera.optimizers.kernel.KernelThreads;
import dev.tessera.optimizers.kernel.NativeMemory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Raw access to the memory behind a C-order INDArray, for the fused kernels. ND4J's own elementwise,
 * reduction and indexing ops cost 7-10 us of dispatch each and hit slow paths on views (STACK.md), so the
 * hot non-gemm work reads and writes the direct buffer itself: Vector API for float32, plain scalar code
 * (any dtype) as the simple reference path used by float64 gradient checks.
 *
 * <p>The view is the array's own memory ({@link NativeMemory#bytes}): element {@code i} lives at byte
 * {@code i * elementSize}, wherever the array sits in a flat buffer of any size. Only dense C-order arrays are
 * allowed, of at most {@link NativeMemory#MAX_VIEW_BYTES}.
 */
final class Mem {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();
    static final ByteOrder NO = ByteOrder.nativeOrder();
    private static final int COPY_KERNEL = ModelStepTimer.kernel("copy");

    final INDArray arr;
    final ByteBuffer bb;
    final boolean f32;
    private final FloatBuffer floats; // bb as floats, for bulk copies

    Mem(INDArray a) {
        DataType dt = a.dataType();
        if (dt != DataType.FLOAT && dt != DataType.DOUBLE) {
            throw new IllegalArgumentException("only FLOAT and DOUBLE are supported, got " + dt);
        }
        if (a.ordering() != 'c' || a.length() > 1 && !isDense(a)) {
            throw new IllegalArgumentException("kernels need a dense C-order array, got " + a.shapeInfoToString());
        }
        this.arr = a;
        this.f32 = dt == DataType.FLOAT;
        this.bb = NativeMemory.bytes(a);
        this.floats = bb.asFloatBuffer();
    }

    private static boolean isDense(INDArray a) {
        long s = 1;
        for (int i = a.rank() - 1; i >= 0; i--) {
            if (a.size(i) != 1 && a.stride(i) != s) {
                return false;
            }
            s *= a.size(i);
        }
        return true;
    }

    double get(int i) {
        return f32 ? bb.getFloat(i << 2) : bb.getDouble(i << 3);
    }

    void set(int i, double v) {
        if (f32) {
            bb.putFloat(i << 2, (float) v);
        } else {
            bb.putDouble(i << 3, v);
        }
    }

    void add(int i, double v) {
        set(i, get(i) + v);
    }

    float getF(int i) {
        return bb.getFloat(i << 2);
    }

    void setF(int i, float v) {
        bb.putFloat(i << 2, v);
    }

    /** dst[off..off+n) = elements [i, i+n) (float32): one bulk copy, no per-vector access code. */
    void read(int i, float[] dst, int off, int n) {
        floats.get(i, dst, off, n);
    }

    /** Elements [i, i+n) = src[off..off+n) (float32). */
    void write(float[] src, int off, int i, int n) {
        floats.put(i, src, off, n);
    }

    FloatVector vec(int i) {
        return FloatVector.fromByteBuffer(S, bb, i << 2, NO);
    }

    void put(FloatVector v, int i) {
        v.intoByteBuffer(bb, i << 2, NO);
    }

    /** A C-order view of {@code shape} starting {@code offset} elements into {@code a}'s memory. */
    static INDArray view(INDArray a, long offset, long... shape) {
        long[] stride = new long[shape.length];
        long s = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            stride[i] = s;
            s *= shape[i];
        }
        return Nd4j.create(a.data(), shape, stride, a.offset() + offset, 'c', a.dataType());
    }

    /** Rows {@code [start, start+n)} of a 2-D C-order array, as a view (ND4J's get(interval) fails on views). */
    static INDArray rows(INDArray a, long start, long n) {
        long c = a.size(1);
        return view(a, start * c, n, c);
    }

    // exp(x) = 2^n * e^r, n = round(x / ln 2), |r| <= ln2 / 2, e^r by the Cephes expf polynomial.
    // Scalars broadcast inside exp, not static FloatVector fields: C2 keeps a broadcast constant in a
    // register, while vectors loaded from static fields or an array stayed boxed (58 vs 9 ns per call).
    private static final float EXP_LO = -87f;
    private static final float EXP_HI = 88f;
    private static final float LOG2E = 1.44269504088896341f;
    private static final float ROUND = 12582912f; // 1.5 * 2^23
    private static final int ROUND_BITS = 0x4B400000;
    private static final float NEG_LN2_HI = -0.693359375f;
    private static final float NEG_LN2_LO = 2.12194440e-4f;
    private static final float P0 = 1.9875691500e-4f;
    private static final float P1 = 1.3981999507e-3f;
    private static final float P2 = 8.3334519073e-3f;
    private static final float P3 = 4.1665795894e-2f;
    private static final float P4 = 1.6666665459e-1f;
    private static final float P5 = 5.0000001201e-1f;

    /**
     * e^x lane by lane (inputs clamped to [-87, 88]; ~2 ulp), from IEEE add/mul/fma and bit operations only.
     * {@code lanewise(EXP)} must not be used: C2 computes it with SVML, while code not yet compiled falls
     * back to Math.exp per lane, so results would depend on JIT timing and runs would not repeat bit for bit
     * (a resumed run starts cold). The ops used here give the same bits in every tier.
     */
    static FloatVector exp(FloatVector x) {
        VectorSpecies<Float> s = x.species();
        FloatVector xc = x.max(EXP_LO).min(EXP_HI);
        FloatVector round = FloatVector.broadcast(s, ROUND);
        FloatVector t = xc.mul(LOG2E).add(round); // round to nearest integer, kept in the low mantissa bits
        FloatVector n = t.sub(round);
        FloatVector r = n.fma(FloatVector.broadcast(s, NEG_LN2_HI), xc);
        r = n.fma(FloatVector.broadcast(s, NEG_LN2_LO), r);
        FloatVector p = FloatVector.broadcast(s, P0);
        p = p.fma(r, FloatVector.broadcast(s, P1));
        p = p.fma(r, FloatVector.broadcast(s, P2));
        p = p.fma(r, FloatVector.broadcast(s, P3));
        p = p.fma(r, FloatVector.broadcast(s, P4));
        p = p.fma(r, FloatVector.broadcast(s, P5));
        FloatVector e = p.mul(r.mul(r)).add(r).add(1f);
        IntVector pow2 = t.reinterpretAsInts().sub(ROUND_BITS - 127).lanewise(VectorOperators.LSHL, 23);
        return e.mul(pow2.reinterpretAsFloats());
    }

    /**
     * The L floats of {@code lanes} summed in lane order: a vector's lane sum, once the caller has stored it
     * there with intoArray. reduceLanes(ADD) leaves the order to the implementation (compiled and interpreted
     * code may differ), so bit-repeatable results cannot rely on it. The vector is not passed in: in a large
     * kernel C2 may decline to inline a call, and a vector crossing a call that is not inlined is boxed, an
     * allocation per call (it was most of a worker's garbage).
     */
    static float sumLanes(float[] lanes) {
        float s = 0f;
        for (int i = 0; i < L; i++) {
            s += lanes[i];
        }
        return s;
    }

    /** A scratch for {@link #sumLanes}: one per thread, made where a kernel fans out. */
    static float[] lanes() {
        return new float[L];
    }

    /** m[0..length) = 0, over KernelThreads' threads. */
    static void zero(Mem m, int length) {
        KernelThreads.forRange(length, (part, from, to) -> {
            int i = from;
            if (m.f32) {
                FloatVector z = FloatVector.zero(S);
                for (int b = from + S.loopBound(to - from); i < b; i += L) {
                    m.put(z, i);
                }
            }
            for (; i < to; i++) {
                m.set(i, 0.0);
            }
        });
    }

    /** dst = src, two dense arrays of equal length, over KernelThreads' threads (ND4J's assign: ~1 ms each). */
    static void copy(INDArray src, INDArray dst) {
        Mem s = new Mem(src);
        Mem d = new Mem(dst);
        int n = Math.toIntExact(src.length());
        if (dst.length() != n) {
            throw new IllegalArgumentException("copy of " + n + " elements into " + dst.length());
        }
        long t = ModelStepTimer.startKernel();
        KernelThreads.forRange(n, (part, from, to) -> copy(s, from, d, from, to - from));
        ModelStepTimer.stopKernel(COPY_KERNEL, t);
    }

    /** dst[do..do+n) = src[so..so+n). */
    static void copy(Mem src, int so, Mem dst, int dOff, int n) {
        int i = 0;
        if (src.f32 && dst.f32) {
            for (int b = S.loopBound(n); i < b; i += L) {
                dst.put(src.vec(so + i), dOff + i);
            }
        }
        for (; i < n; i++) {
            dst.set(dOff + i, src.get(so + i));
        }
    }

    /** y[yo..yo+n) += alpha * x[xo..xo+n). */
    static void axpy(double alpha, Mem x, int xo, Mem y, int yo, int n) {
        int i = 0;
        if (x.f32 && y.f32) {
            FloatVector va = FloatVector.broadcast(S, (float) alpha);
            for (int b = S.loopBound(n); i < b; i += L) {
                y.put(x.vec(xo + i).fma(va, y.vec(yo + i)), yo + i);
            }
        }
        for (; i < n; i++) {
            y.set(yo + i, y.get(yo + i) + alpha * x.get(xo + i));
        }
    }

    /** y[yo..yo+n) = alpha * x[xo..xo+n). */
    static void scaledCopy(double alpha, Mem x, int xo, Mem y, int yo, int n) {
        int i = 0;
        if (x.f32 && y.f32) {
            FloatVector va = FloatVector.broadcast(S, (float) alpha);
            for (int b = S.loopBound(n); i < b; i += L) {
                y.put(x.vec(xo + i).mul(va), yo + i);
            }
        }
        for (; i < n; i++) {
            y.set(yo + i, alpha * x.get(xo + i));
        }
    }

    /** sum a[ao+i] * b[bo+i] over i < n; {@code lanes} is a {@link #lanes()} scratch. */
    static double dot(Mem a, int ao, Mem b, int bo, int n, float[] lanes) {
        int i = 0;
        double s = 0;
        if (a.f32 && b.f32) {
            FloatVector acc = FloatVector.zero(S);
            for (int e = S.loopBound(n); i < e; i += L) {
                acc = a.vec(ao + i).fma(b.vec(bo + i), acc);
            }
            acc.intoArray(lanes, 0);
            s = sumLanes(lanes);
        }
        for (; i < n; i++) {
            s += a.get(ao + i) * b.get(bo + i);
        }
        return s;
    }
}
