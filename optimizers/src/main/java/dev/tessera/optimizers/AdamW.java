package dev.tessera.optimizers;

import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
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
 * The loop runs over direct NIO views of the ND4J buffers: no temporaries, each element read once.
 */
public final class AdamW implements Optimizer {

    private final INDArray params;
    private final INDArray grads;
    private final List<ParamSpan> spans;
    private final AdamWConfig config;
    private final INDArray m;
    private final INDArray v;

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
    }

    @Override
    public void step(long step, double lr, double gradScale) {
        double b1 = config.beta1();
        double b2 = config.beta2();
        double bc1 = 1.0 - Math.pow(b1, step);
        double bc2 = 1.0 - Math.pow(b2, step);
        double stepSize = lr / bc1;
        double invSqrtBc2 = 1.0 / Math.sqrt(bc2);
        for (ParamSpan span : spans) {
            double decay = span.decays() ? 1.0 - lr * config.weightDecay() : 1.0;
            int from = Math.toIntExact(span.offset());
            int to = Math.toIntExact(span.offset() + span.numel());
            if (params.dataType() == DataType.DOUBLE) {
                updateDouble(from, to, b1, b2, decay, stepSize, invSqrtBc2, gradScale);
            } else {
                updateFloat(from, to, (float) b1, (float) b2, (float) decay, (float) stepSize,
                        (float) invSqrtBc2, (float) gradScale);
            }
        }
    }

    private void updateFloat(int from, int to, float b1, float b2, float decay, float stepSize,
                             float invSqrtBc2, float gradScale) {
        FloatBuffer p = floats(params);
        FloatBuffer g = floats(grads);
        FloatBuffer mb = floats(m);
        FloatBuffer vb = floats(v);
        float eps = (float) config.eps();
        float c1 = 1f - b1;
        float c2 = 1f - b2;
        for (int i = from; i < to; i++) {
            float gi = g.get(i) * gradScale;
            float mi = b1 * mb.get(i) + c1 * gi;
            float vi = b2 * vb.get(i) + c2 * gi * gi;
            mb.put(i, mi);
            vb.put(i, vi);
            p.put(i, p.get(i) * decay - stepSize * mi / ((float) Math.sqrt(vi) * invSqrtBc2 + eps));
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
