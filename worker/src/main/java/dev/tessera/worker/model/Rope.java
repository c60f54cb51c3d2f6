package dev.tessera.worker.model;

import dev.tessera.optimizers.kernel.KernelThreads;
import jdk.incubator.vector.FloatVector;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Rotary position embedding, rotate-half convention (Llama/HF): for i < D/2 the pair (x_i, x_{i+D/2}) is
 * rotated by angle pos * theta^(-2i/D). Positions are global: a sequence-parallel rank passes the positions of
 * the tokens it holds ({@link SequenceShard#positions}), which under zig-zag placement are two separate runs.
 *
 * <p>The kernel also permutes [B, T, H, D] (the layout a projection gemm produces) to [B, H, T, D] (what the
 * batched attention matmuls need), so the rotation costs no extra pass; half-views would be 27x slower.
 * RoPE is linear and orthogonal, so backward is the inverse rotation and needs no saved input.
 */
public final class Rope {
    private static final int ROPE_KERNEL = ModelStepTimer.kernel("rope");
    private static final int PERMUTE_KERNEL = ModelStepTimer.kernel("permute");
    private final int headDim;
    private final int half;
    private final int seq;
    private final double[] cos; // [T, D/2]
    private final double[] sin; // [T, D/2]
    private final float[] cosF;
    private final float[] sinF;

    /** Positions {@code positionOffset + t} for t < seq. */
    public Rope(int headDim, double theta, int seq, int positionOffset) {
        this(headDim, theta, SequenceShard.run(positionOffset, seq));
    }

    /** Local token t at global position {@code positions[t]}. */
    public Rope(int headDim, double theta, int[] positions) {
        int seq = positions.length;
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("RoPE needs an even head dimension, got " + headDim);
        }
        this.headDim = headDim;
        this.half = headDim / 2;
        this.seq = seq;
        cos = new double[seq * half];
        sin = new double[seq * half];
        cosF = new float[seq * half];
        sinF = new float[seq * half];
        for (int t = 0; t < seq; t++) {
            for (int i = 0; i < half; i++) {
                double invFreq = Math.pow(theta, -2.0 * i / headDim);
                double a = positions[t] * invFreq;
                cos[t * half + i] = Math.cos(a);
                sin[t * half + i] = Math.sin(a);
                cosF[t * half + i] = (float) cos[t * half + i];
                sinF[t * half + i] = (float) sin[t * half + i];
            }
        }
    }

    /** x: [B*T, H*D] (token-major) -> out: [B*H, T, D] (head-major), rotated. */
    public void forward(INDArray x, INDArray out, int batch, int heads) {
        forward(x, heads * headDim, 0, out, batch, heads);
    }

    /** As above, reading columns [colOff, colOff + H*D) of rows {@code rowStride} apart (a fused QKV output). */
    public void forward(INDArray x, int rowStride, int colOff, INDArray out, int batch, int heads) {
        apply(new Mem(x), new Mem(out), batch, heads, true, 1f, rowStride, colOff);
    }

    /** dOut: [B*H, T, D] -> dx: [B*T, H*D], inverse rotation (rotation by -angle), overwriting dx. */
    public void backward(INDArray dOut, INDArray dx, int batch, int heads) {
        backward(dOut, dx, heads * headDim, 0, batch, heads);
    }

    /** As above, writing columns [colOff, colOff + H*D) of rows {@code rowStride} apart. */
    public void backward(INDArray dOut, INDArray dx, int rowStride, int colOff, int batch, int heads) {
        apply(new Mem(dOut), new Mem(dx), batch, heads, false, -1f, rowStride, colOff);
    }

    /** dst[do..do+D) = the D values at src[so..] rotated for (local) position t: the fused kernel's load. */
    void rotateInto(Mem src, int so, float[] dst, int dOff, int t) {
        int tab = t * half;
        int i = 0;
        for (int e = Mem.S.loopBound(half); i < e; i += Mem.L) {
            FloatVector c = FloatVector.fromArray(Mem.S, cosF, tab + i);
            FloatVector sn = FloatVector.fromArray(Mem.S, sinF, tab + i);
            FloatVector x1 = src.vec(so + i);
            FloatVector x2 = src.vec(so + half + i);
            x1.mul(c).sub(x2.mul(sn)).intoArray(dst, dOff + i);
            x2.mul(c).add(x1.mul(sn)).intoArray(dst, dOff + half + i);
        }
        for (; i < half; i++) {
            float c = cosF[tab + i];
            float sn = sinF[tab + i];
            float x1 = src.getF(so + i);
            float x2 = src.getF(so + half + i);
            dst[dOff + i] = x1 * c - x2 * sn;
            dst[dOff + half + i] = x2 * c + x1 * sn;
        }
    }

    /** dst[do..do+D) = src[so..so+D) rotated back (by -angle) for position t: the fused kernel's store. */
    void unrotateInto(float[] src, int so, Mem dst, int dOff, int t) {
        int tab = t * half;
        int i = 0;
        for (int e = Mem.S.loopBound(half); i < e; i += Mem.L) {
            FloatVector c = FloatVector.fromArray(Mem.S, cosF, tab + i);
            FloatVector sn = FloatVector.fromArray(Mem.S, sinF, tab + i).neg();
            FloatVector x1 = FloatVector.fromArray(Mem.S, src, so + i);
            FloatVector x2 = FloatVector.fromArray(Mem.S, src, so + half + i);
            dst.put(x1.mul(c).sub(x2.mul(sn)), dOff + i);
            dst.put(x2.mul(c).add(x1.mul(sn)), dOff + half + i);
        }
        for (; i < half; i++) {
            float c = cosF[tab + i];
            float sn = -sinF[tab + i];
            float x1 = src[so + i];
            float x2 = src[so + half + i];
            dst.setF(dOff + i, x1 * c - x2 * sn);
            dst.setF(dOff + half + i, x2 * c + x1 * sn);
        }
    }

    /** forward: src token-major, dst head-major; backward: src head-major, dst token-major, sin negated. */
    private void apply(Mem src, Mem dst, int batch, int heads, boolean tokenMajorSrc, float sign, int rowStride,
                       int colOff) {
        long t = ModelStepTimer.startKernel();
        KernelThreads.forRange(batch * seq,
                (part, from, to) -> apply(src, dst, heads, tokenMajorSrc, sign, rowStride, colOff, from, to));
        ModelStepTimer.stopKernel(ROPE_KERNEL, t);
    }

    /** Tokens [from, to) of the flattened (batch, seq) range. */
    private void apply(Mem src, Mem dst, int heads, boolean tokenMajorSrc, float sign, int rowStride, int colOff,
                       int from, int to) {
        int d = headDim;
        for (int bt = from; bt < to; bt++) {
            int b = bt / seq;
            int t = bt % seq;
            int tab = t * half;
            for (int h = 0; h < heads; h++) {
                int tokenMajor = (b * seq + t) * rowStride + colOff + h * d;
                int headMajor = ((b * heads + h) * seq + t) * d;
                int s = tokenMajorSrc ? tokenMajor : headMajor;
                int o = tokenMajorSrc ? headMajor : tokenMajor;
                int i = 0;
                if (src.f32 && dst.f32) {
                    FloatVector vs = FloatVector.broadcast(Mem.S, sign);
                    for (int e = Mem.S.loopBound(half); i < e; i += Mem.L) {
                        FloatVector c = FloatVector.fromArray(Mem.S, cosF, tab + i);
                        FloatVector sn = FloatVector.fromArray(Mem.S, sinF, tab + i).mul(vs);
                        FloatVector x1 = src.vec(s + i);
                        FloatVector x2 = src.vec(s + half + i);
                        dst.put(x1.mul(c).sub(x2.mul(sn)), o + i);
                        dst.put(x2.mul(c).add(x1.mul(sn)), o + half + i);
                    }
                }
                for (; i < half; i++) {
                    double c = cos[tab + i];
                    double sn = sign * sin[tab + i];
                    double x1 = src.get(s + i);
                    double x2 = src.get(s + half + i);
                    dst.set(o + i, x1 * c - x2 * sn);
                    dst.set(o + half + i, x2 * c + x1 * sn);
                }
            }
        }
    }

    /** The same [B, T, H, D] <-> [B, H, T, D] permutation without rotation (for V and dV). */
    static void permute(INDArray src, INDArray dst, int batch, int seq, int heads, int d, boolean toHeadMajor) {
        permute(src, dst, batch, seq, heads, d, toHeadMajor, heads * d, 0);
    }

    /** As above, the token-major side being columns [colOff, colOff + H*D) of rows rowStride apart. */
    static void permute(INDArray src, INDArray dst, int batch, int seq, int heads, int d, boolean toHeadMajor,
                        int rowStride, int colOff) {
        Mem s = new Mem(src);
        Mem o = new Mem(dst);
        long clock = ModelStepTimer.startKernel();
        KernelThreads.forRange(batch * seq, (part, from, to) -> {
            for (int bt = from; bt < to; bt++) {
                int b = bt / seq;
                int t = bt % seq;
                for (int h = 0; h < heads; h++) {
                    int tokenMajor = (b * seq + t) * rowStride + colOff + h * d;
                    int headMajor = ((b * heads + h) * seq + t) * d;
                    if (toHeadMajor) {
                        Mem.copy(s, tokenMajor, o, headMajor, d);
                    } else {
                        Mem.copy(s, headMajor, o, tokenMajor, d);
                    }
                }
            }
        });
        ModelStepTimer.stopKernel(PERMUTE_KERNEL, clock);
    }
}
