package dev.tessera.worker.model;

import dev.tessera.optimizers.kernel.KernelThreads;
import jdk.incubator.vector.FloatVector;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * SwiGLU FFN: w2(silu(w1 x) * w3 x). w1 and w3 are adjacent in the parameter layout (the dense FFN's
 * gate_proj and up_proj, each expert's w1 and w3), so they run stacked: one [N, 2F] gemm forward, one dW and
 * one dx gemm backward, and the gate kernels read the two halves of each row. The activations live in an
 * {@link Acts} passed per call, so a dense FFN owns one and the MoE layer runs every expert on row ranges of
 * one shared set (tokens of expert e are contiguous rows after the gather).
 */
public final class SwiGLU {

    private static final Runnable NOTHING = () -> { };
    private static final int GATE_KERNEL = ModelStepTimer.kernel("ffn.gate");
    private final Linear w13; // [2F, C] gate_proj | up_proj
    private final Linear w2;  // down_proj [C, F]

    /**
     * Activations of up to {@code rows} tokens: h [rows, 2F] (w1 | w3 halves side by side), a [rows, F].
     * Backward overwrites each with its gradient (dh, da): a is dead once w2's dW has read it and h once the
     * gate's backward has, and writing over lines just read costs no extra memory traffic.
     */
    public record Acts(INDArray h, INDArray a) {
        public static Acts allocate(DataType dt, long rows, long width) {
            return allocate(dt, rows, width, Activations.own());
        }

        public static Acts allocate(DataType dt, long rows, long width, Activations activations) {
            return new Acts(activations.array(dt, rows, 2 * width), activations.array(dt, rows, width));
        }

        /** Rows [start, start+n) of every buffer. */
        public Acts rows(long start, long n) {
            return new Acts(Mem.rows(h, start, n), Mem.rows(a, start, n));
        }
    }

    private SwiGLU(Linear w13, Linear w2) {
        this.w13 = w13;
        this.w2 = w2;
    }

    /** gate (w1) and up (w3), which must be adjacent in the layout, stacked; down is w2. */
    public static SwiGLU stacked(ParameterStore ps, String gate, String up, String down) {
        return new SwiGLU(Linear.stacked(ps, gate, up), new Linear(ps, down));
    }

    /** x: [N, C] -> out: [N, C] (overwritten, or += with {@code accumulate}); s holds N rows. */
    public void forward(INDArray x, Acts s, INDArray out, boolean accumulate) {
        forwardActivations(x, s);
        w2.forward(s.a(), out, accumulate);                        // out (+)= a W2^T: [N, C]
    }

    /**
     * The activations backward reads, without the output: what activation checkpointing recomputes, since the
     * output itself (part of the next block's input) is kept.
     */
    public void forwardActivations(INDArray x, Acts s) {
        int rows = (int) s.a().size(0);
        int f = (int) s.a().size(1);
        w13.forward(x, s.h(), false);                              // h = x [W1 | W3]^T: [N, 2F]
        Mem h = new Mem(s.h());
        gateForward(h, 0, h, f, 2 * f, new Mem(s.a()), rows, f);  // a = silu(h1) * h3: [N, F]
    }

    /**
     * dOut: [N, C] -> dx: [N, C] (overwritten, or += with {@code accumulateDx}); weight grads accumulate.
     * Consumes the forward's activations in s (they become their gradients).
     */
    public void backward(INDArray x, Acts s, INDArray dOut, INDArray dx, boolean accumulateDx) {
        backward(x, s, dOut, dx, accumulateDx, NOTHING, NOTHING);
    }

    /**
     * As above, reporting its progress: {@code downDone} once W2 is through (its gradient is final and W2 is not read
     * again), {@code gateUpRead} once [W1 | W3] is not read again (dx is computed before their gradient, so the
     * weights can go before the gradient arrives). The same bits.
     */
    public void backward(INDArray x, Acts s, INDArray dOut, INDArray dx, boolean accumulateDx, Runnable downDone,
                         Runnable gateUpRead) {
        int rows = (int) s.a().size(0);
        int f = (int) s.a().size(1);
        w2.backward(s.a(), dOut, s.a(), false); // dW2 reads a before dx overwrites it with da: [N, F]
        downDone.run();
        Mem h = new Mem(s.h());
        gateBackward(h, 0, h, f, 2 * f, new Mem(s.a()), h, h, rows, f); // dh [N, 2F] over h
        w13.backwardInputFirst(x, s.h(), dx, accumulateDx, gateUpRead);  // [N, 2F] -> [N, C]
    }

    /**
     * a[r, j] = silu(h1) * h3 = h1 * sigmoid(h1) * h3, with h1 = h1m[r*stride + off1 + j] and h3 likewise;
     * a is [rows, f]. Rows split over KernelThreads' threads.
     */
    static void gateForward(Mem h1, int off1, Mem h3, int off3, int stride, Mem a, int rows, int f) {
        long t = ModelStepTimer.startKernel();
        KernelThreads.forRange(rows, (part, from, to) -> {
            for (int r = from; r < to; r++) {
                gateForwardRow(h1, r * stride + off1, h3, r * stride + off3, a, r * f, f);
            }
        });
        ModelStepTimer.stopKernel(GATE_KERNEL, t);
    }

    private static void gateForwardRow(Mem h1, int o1, Mem h3, int o3, Mem a, int oa, int n) {
        int i = 0;
        if (h1.f32 && h3.f32 && a.f32) {
            FloatVector one = FloatVector.broadcast(Mem.S, 1f);
            for (int b = Mem.S.loopBound(n); i < b; i += Mem.L) {
                FloatVector x = h1.vec(o1 + i);
                FloatVector sig = one.div(Mem.exp(x.neg()).add(one));
                a.put(x.mul(sig).mul(h3.vec(o3 + i)), oa + i);
            }
        }
        for (; i < n; i++) {
            double x = h1.get(o1 + i);
            a.set(oa + i, x / (1 + Math.exp(-x)) * h3.get(o3 + i));
        }
    }

    /**
     * dh3 = da * silu(h1); dh1 = da * h3 * s * (1 + h1 * (1 - s)) with s = sigmoid(h1). dh1 and dh3 use the
     * same layout (offsets, stride) as h1 and h3 and may be h1 and h3 themselves (each element is read
     * before it is written).
     */
    static void gateBackward(Mem h1, int off1, Mem h3, int off3, int stride, Mem da, Mem dh1, Mem dh3, int rows,
                             int f) {
        long t = ModelStepTimer.startKernel();
        boolean f32 = h1.f32 && h3.f32 && da.f32 && dh1.f32 && dh3.f32;
        KernelThreads.forRange(rows, (part, from, to) -> {
            GateRow row = f32 ? new GateRow(f) : null;
            for (int r = from; r < to; r++) {
                int o1 = r * stride + off1;
                int o3 = r * stride + off3;
                if (f32) {
                    row.backward(h1, o1, h3, o3, da, r * f, dh1, dh3);
                } else {
                    gateBackwardScalar(h1, h3, o1, o3, da, r * f, dh1, dh3, f);
                }
            }
        });
        ModelStepTimer.stopKernel(GATE_KERNEL, t);
    }

    /**
     * One float32 row of the gate's backward on heap copies: the row is read and written with bulk copies and
     * the math runs on arrays. With the five direct-buffer vector accesses and the exp in one loop, C2 ran out
     * of inlining budget and boxed a vector per iteration (3x slower, and most of a worker's garbage).
     */
    private static final class GateRow {
        private final float[] x;  // h1, then dh1
        private final float[] up; // h3, then dh3
        private final float[] g;  // da
        private final int n;

        GateRow(int n) {
            this.n = n;
            x = new float[n];
            up = new float[n];
            g = new float[n];
        }

        void backward(Mem h1, int o1, Mem h3, int o3, Mem da, int od, Mem dh1, Mem dh3) {
            h1.read(o1, x, 0, n);
            h3.read(o3, up, 0, n);
            da.read(od, g, 0, n);
            FloatVector one = FloatVector.broadcast(Mem.S, 1f);
            int vectors = Mem.S.loopBound(n);
            for (int i = 0; i < vectors; i += Mem.L) {
                FloatVector xv = FloatVector.fromArray(Mem.S, x, i);
                FloatVector s = one.div(Mem.exp(xv.neg()).add(one));
                FloatVector gv = FloatVector.fromArray(Mem.S, g, i);
                FloatVector upv = FloatVector.fromArray(Mem.S, up, i);
                gv.mul(xv).mul(s).intoArray(up, i);
                gv.mul(upv).mul(s.mul(one.add(xv.mul(one.sub(s))))).intoArray(x, i);
            }
            for (int i = vectors; i < n; i++) { // in double, as gateBackwardScalar
                double xi = x[i];
                double s = 1 / (1 + Math.exp(-xi));
                double gi = g[i];
                double upi = up[i];
                up[i] = (float) (gi * xi * s);
                x[i] = (float) (gi * upi * s * (1 + xi * (1 - s)));
            }
            dh1.write(x, 0, o1, n);
            dh3.write(up, 0, o3, n);
        }
    }

    /** Any dtype, in double: the reference the float64 gradient checks run. */
    private static void gateBackwardScalar(Mem h1, Mem h3, int o1, int o3, Mem da, int od, Mem dh1, Mem dh3,
                                           int n) {
        for (int i = 0; i < n; i++) {
            double x = h1.get(o1 + i);
            double up = h3.get(o3 + i);
            double sig = 1 / (1 + Math.exp(-x));
            double g = da.get(od + i);
            dh3.set(o3 + i, g * x * sig);
            dh1.set(o1 + i, g * up * sig * (1 + x * (1 - sig)));
        }
    }
}
