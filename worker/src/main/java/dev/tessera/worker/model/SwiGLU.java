package dev.tessera.worker.model;

import dev.tessera.optimizers.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * SwiGLU FFN: w2(silu(w1 x) * w3 x). The activations live in an {@link Acts} passed per call, so a dense
 * FFN owns one and the MoE layer runs every expert on row ranges of one shared set (tokens of expert e are
 * contiguous rows after the gather).
 */
public final class SwiGLU {
    private final Linear w1; // gate_proj [F, C]
    private final Linear w3; // up_proj   [F, C]
    private final Linear w2; // down_proj [C, F]

    /** Activations of up to {@code rows} tokens; all [rows, F]. */
    public record Acts(INDArray h1, INDArray h3, INDArray a, INDArray da, INDArray dh1, INDArray dh3) {
        public static Acts allocate(DataType dt, long rows, long width) {
            return new Acts(Nd4j.create(dt, rows, width), Nd4j.create(dt, rows, width), Nd4j.create(dt, rows, width),
                    Nd4j.create(dt, rows, width), Nd4j.create(dt, rows, width), Nd4j.create(dt, rows, width));
        }

        /** Rows [start, start+n) of every buffer. */
        public Acts rows(long start, long n) {
            return new Acts(Mem.rows(h1, start, n), Mem.rows(h3, start, n), Mem.rows(a, start, n),
                    Mem.rows(da, start, n), Mem.rows(dh1, start, n), Mem.rows(dh3, start, n));
        }
    }

    public SwiGLU(Linear w1, Linear w3, Linear w2) {
        this.w1 = w1;
        this.w3 = w3;
        this.w2 = w2;
    }

    /** x: [N, C] -> out: [N, C] (overwritten, or += with {@code accumulate}); s holds N rows. */
    public void forward(INDArray x, Acts s, INDArray out, boolean accumulate) {
        long t = ModelStepTimer.start();
        w1.forward(x, s.h1(), false);
        w3.forward(x, s.h3(), false);
        t = ModelStepTimer.stop("ffn.gemm.fwd", t);
        gateForward(new Mem(s.h1()), new Mem(s.h3()), new Mem(s.a()), (int) s.a().length());
        t = ModelStepTimer.stop("ffn.gate.fwd", t);
        w2.forward(s.a(), out, accumulate);
        ModelStepTimer.stop("ffn.gemm.fwd", t);
    }

    /** dOut: [N, C] -> dx: [N, C] (overwritten, or += with {@code accumulateDx}); weight grads accumulate. */
    public void backward(INDArray x, Acts s, INDArray dOut, INDArray dx, boolean accumulateDx) {
        long t = ModelStepTimer.start();
        w2.backward(s.a(), dOut, s.da(), false);
        t = ModelStepTimer.stop("ffn.gemm.bwd", t);
        gateBackward(new Mem(s.h1()), new Mem(s.h3()), new Mem(s.da()), new Mem(s.dh1()), new Mem(s.dh3()),
                (int) s.a().length());
        t = ModelStepTimer.stop("ffn.gate.bwd", t);
        w1.backward(x, s.dh1(), dx, accumulateDx);
        w3.backward(x, s.dh3(), dx, true);
        ModelStepTimer.stop("ffn.gemm.bwd", t);
    }

    /** a = silu(h1) * h3 = h1 * sigmoid(h1) * h3; elementwise over Parallel's threads. */
    static void gateForward(Mem h1, Mem h3, Mem a, int n) {
        Parallel.forRange(n, (part, from, to) -> gateForward(h1, h3, a, from, to));
    }

    private static void gateForward(Mem h1, Mem h3, Mem a, int from, int n) {
        int i = from;
        if (h1.f32 && h3.f32 && a.f32) {
            FloatVector one = FloatVector.broadcast(Mem.S, 1f);
            for (int b = from + Mem.S.loopBound(n - from); i < b; i += Mem.L) {
                FloatVector x = h1.vec(i);
                FloatVector sig = one.div(x.neg().lanewise(VectorOperators.EXP).add(one));
                a.put(x.mul(sig).mul(h3.vec(i)), i);
            }
        }
        for (; i < n; i++) {
            double x = h1.get(i);
            a.set(i, x / (1 + Math.exp(-x)) * h3.get(i));
        }
    }

    /** dh3 = da * silu(h1); dh1 = da * h3 * s * (1 + h1 * (1 - s)) with s = sigmoid(h1). */
    static void gateBackward(Mem h1, Mem h3, Mem da, Mem dh1, Mem dh3, int n) {
        Parallel.forRange(n, (part, from, to) -> gateBackward(h1, h3, da, dh1, dh3, from, to));
    }

    private static void gateBackward(Mem h1, Mem h3, Mem da, Mem dh1, Mem dh3, int from, int n) {
        int i = from;
        if (h1.f32 && h3.f32 && da.f32 && dh1.f32 && dh3.f32) {
            FloatVector one = FloatVector.broadcast(Mem.S, 1f);
            for (int b = from + Mem.S.loopBound(n - from); i < b; i += Mem.L) {
                FloatVector x = h1.vec(i);
                FloatVector sig = one.div(x.neg().lanewise(VectorOperators.EXP).add(one));
                FloatVector g = da.vec(i);
                dh3.put(g.mul(x).mul(sig), i);
                FloatVector dsilu = sig.mul(one.add(x.mul(one.sub(sig))));
                dh1.put(g.mul(h3.vec(i)).mul(dsilu), i);
            }
        }
        for (; i < n; i++) {
            double x = h1.get(i);
            double sig = 1 / (1 + Math.exp(-x));
            double g = da.get(i);
            dh3.set(i, g * x * sig);
            dh1.set(i, g * h3.get(i) * sig * (1 + x * (1 - sig)));
        }
    }
}
