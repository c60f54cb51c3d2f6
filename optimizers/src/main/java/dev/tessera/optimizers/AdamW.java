package dev.tessera.optimizers;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * AdamW over spans of flat buffers, in one fused pass per span:
 * <pre>
 *   g = gradScale * g
 *   m = b1 m + (1-b1) g ;  v = b2 v + (1-b2) g^2
 *   p = p - lr * wd * p              (decoupled; matrices only)
 *   p = p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * </pre>
 * State is kept in the parameters' dtype (fp32 training, fp64 for checks), laid out like the spans.
 * The loop runs over direct NIO views of the ND4J buffers: no temporaries, each element read once;
 * float32 is a Vector API loop split over {@link Parallel}'s threads.
 */
public final class AdamW implements Optimizer {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final ByteOrder NO = ByteOrder.nativeOrder();

    private final INDArray params;
    private final INDArray grads;
    private final List<ParamSpan> spans;
    private final AdamWConfig config;
    private final INDArray m;
    private final INDArray v;
    private final ByteBuffer pBytes; // native-order byte views of the four buffers (float32 path)
    private final ByteBuffer gBytes;
    private final ByteBuffer mBytes;
    private final ByteBuffer vBytes;

    public AdamW(INDArray params, INDArray grads, List<ParamSpan> spans, AdamWConfig config) {
        if (params.length() != grads.length()) {
            throw new IllegalArgumentException("params and grads differ in length");
        }
        this.params = params;
        this.grads = grads;
        this.spans = List.copyOf(spans);
        this.config = config;
        this.m = Nd4j.zeros(params.dataType(), params.length());
        this.v = Nd4j.zeros(params.dataType(), params.length());
        this.pBytes = DirectBuffers.bytes(params).order(NO);
        this.gBytes = DirectBuffers.bytes(grads).order(NO);
        this.mBytes = DirectBuffers.bytes(m).order(NO);
        this.vBytes = DirectBuffers.bytes(v).order(NO);
    }

    @Override
    public void step(long step, double lr, double gradScale) {
        double b1 = config.beta1();
        double b2 = config.beta2();
        double bc1 = 1.0 - Math.pow(b1, step);
        double bc2 = 1.0 - Math.pow(b2, step);
        double stepSize = lr / bc1;
        double invSqrtBc2 = 1.0 / Math.sqrt(bc2);
        if (params.dataType() == DataType.DOUBLE) {
            for (ParamSpan span : spans) {
                double decay = span.decays() ? 1.0 - lr * config.weightDecay() : 1.0;
                int from = Math.toIntExact(span.offset());
                int to = Math.toIntExact(span.offset() + span.numel());
                updateDouble(from, to, b1, b2, decay, stepSize, invSqrtBc2, gradScale);
            }
            return;
        }
        // float32: the element range cut into fixed parts over Parallel's threads. The update is
        // elementwise, so the result does not depend on the split.
        float decayOn = (float) (1.0 - lr * config.weightDecay());
        Parallel.forRange(Math.toIntExact(params.length()), (part, lo, hi) -> {
            for (ParamSpan span : spans) {
                int from = Math.max(lo, Math.toIntExact(span.offset()));
                int to = Math.min(hi, Math.toIntExact(span.offset() + span.numel()));
                if (from < to) {
                    updateFloat(from, to, (float) b1, (float) b2, span.decays() ? decayOn : 1f, (float) stepSize,
                            (float) invSqrtBc2, (float) gradScale);
                }
            }
        });
    }

    /** The float32 update of [from, to): Vector API, the same operations in the same order as the tail. */
    private void updateFloat(int from, int to, float b1, float b2, float decay, float stepSize,
                             float invSqrtBc2, float gradScale) {
        float eps = (float) config.eps();
        float c1 = 1f - b1;
        float c2 = 1f - b2;
        FloatVector vb1 = FloatVector.broadcast(S, b1);
        FloatVector vb2 = FloatVector.broadcast(S, b2);
        FloatVector vc1 = FloatVector.broadcast(S, c1);
        FloatVector vc2 = FloatVector.broadcast(S, c2);
        FloatVector vgs = FloatVector.broadcast(S, gradScale);
        FloatVector vdecay = FloatVector.broadcast(S, decay);
        FloatVector vstep = FloatVector.broadcast(S, stepSize);
        FloatVector vbc2 = FloatVector.broadcast(S, invSqrtBc2);
        FloatVector veps = FloatVector.broadcast(S, eps);
        int i = from;
        for (int end = from + S.loopBound(to - from); i < end; i += S.length()) {
            int o = i << 2;
            FloatVector gi = FloatVector.fromByteBuffer(S, gBytes, o, NO).mul(vgs);
            FloatVector mi = vb1.mul(FloatVector.fromByteBuffer(S, mBytes, o, NO)).add(vc1.mul(gi));
            FloatVector vi = vb2.mul(FloatVector.fromByteBuffer(S, vBytes, o, NO)).add(vc2.mul(gi).mul(gi));
            mi.intoByteBuffer(mBytes, o, NO);
            vi.intoByteBuffer(vBytes, o, NO);
            FloatVector denom = vi.lanewise(VectorOperators.SQRT).mul(vbc2).add(veps);
            FloatVector p = FloatVector.fromByteBuffer(S, pBytes, o, NO);
            p.mul(vdecay).sub(vstep.mul(mi).div(denom)).intoByteBuffer(pBytes, o, NO);
        }
        for (; i < to; i++) {
            int o = i << 2;
            float gi = gBytes.getFloat(o) * gradScale;
            float mi = b1 * mBytes.getFloat(o) + c1 * gi;
            float vi = b2 * vBytes.getFloat(o) + c2 * gi * gi;
            mBytes.putFloat(o, mi);
            vBytes.putFloat(o, vi);
            float denom = (float) Math.sqrt(vi) * invSqrtBc2 + eps;
            pBytes.putFloat(o, pBytes.getFloat(o) * decay - stepSize * mi / denom);
        }
    }

    private void updateDouble(int from, int to, double b1, double b2, double decay, double stepSize,
                              double invSqrtBc2, double gradScale) {
        DoubleBuffer p = doubles(params);
        DoubleBuffer g = doubles(grads);
        DoubleBuffer mb = doubles(m);
        DoubleBuffer vb = doubles(v);
        double eps = config.eps();
        for (int i = from; i < to; i++) {
            double gi = g.get(i) * gradScale;
            double mi = b1 * mb.get(i) + (1 - b1) * gi;
            double vi = b2 * vb.get(i) + (1 - b2) * gi * gi;
            mb.put(i, mi);
            vb.put(i, vi);
            p.put(i, p.get(i) * decay - stepSize * mi / (Math.sqrt(vi) * invSqrtBc2 + eps));
        }
    }

    @Override
    public long stateBytes() {
        return (m.length() + v.length()) * m.dataType().width();
    }

    @Override
    public Map<String, INDArray> state() {
        Map<String, INDArray> state = new LinkedHashMap<>();
        state.put("adamw.exp_avg", m);
        state.put("adamw.exp_avg_sq", v);
        return state;
    }

    static FloatBuffer floats(INDArray flat) {
        return DirectBuffers.bytes(flat).order(ByteOrder.nativeOrder()).asFloatBuffer();
    }

    static DoubleBuffer doubles(INDArray flat) {
        return DirectBuffers.bytes(flat).order(ByteOrder.nativeOrder()).asDoubleBuffer();
    }
}
