package dev.tessera.optimizers;

import dev.tessera.optimizers.kernel.KernelThreads;
import dev.tessera.optimizers.kernel.NativeMemory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
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
 *   p = p - lr * wd * p              (decoupled; matrices only unless decay1d)
 *   p = p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * </pre>
 * State is kept in the parameters' dtype (fp32 training, fp64 for checks), laid out like the spans.
 * The loop runs over direct NIO views of each tensor's memory, made once ({@link NativeMemory}): no temporaries,
 * each element read once; float32 is a Vector API loop split over the {@link KernelThreads}.
 *
 * <p>Under ZeRO the update touches only the rank's {@link Shard} {@code [from, to)} and the state arrays hold
 * only those elements (state index {@code i - from}). The update is elementwise, so a shard's result is
 * bit-identical to the same elements of the whole-buffer update and nothing is reduced across ranks.
 */
public final class AdamW implements Optimizer {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final ByteOrder NO = ByteOrder.nativeOrder();

    private final INDArray params;
    private final INDArray grads; // held for the pieces' views, which do not keep their memory alive
    private final AdamWConfig config;
    private final long from; // the owned range [from, to) of the flat buffers
    private final long to;
    private final INDArray m; // length to - from; null when the shard is empty
    private final INDArray v;
    private final Piece[] pieces; // the owned part of every span, in buffer order

    /**
     * The owned part {@code [lo, hi)} of one tensor, with native-order views of its parameters, gradients and
     * state, made once: element {@code lo + k} is at byte {@code k * width} of each. A tensor fits one view
     * (planning refuses larger ones), so the kernels index with ints while the flat buffers may exceed 2 GiB.
     */
    private record Piece(long lo, long hi, boolean decays, ByteBuffer p, ByteBuffer g, ByteBuffer m, ByteBuffer v) {
    }

    /** The single-rank optimizer over the whole buffer. */
    public AdamW(INDArray params, INDArray grads, List<ParamSpan> spans, AdamWConfig config) {
        this(params, grads, spans, config, Shard.whole(params.length()), ShardReducer.LOCAL);
    }

    /**
     * The optimizer of one ZeRO rank, updating {@code shard} only. {@code reducer} is accepted so that all
     * optimizers are built alike ({@link OptimizerSpec#create}); AdamW is elementwise and never calls it.
     */
    public AdamW(INDArray params, INDArray grads, List<ParamSpan> spans, AdamWConfig config, Shard shard,
                 ShardReducer reducer) {
        shard.checkFits(params, grads);
        this.params = params;
        this.grads = grads;
        this.config = config;
        this.from = shard.from();
        this.to = shard.to();
        boolean empty = to == from;
        this.m = empty ? null : Nd4j.zeros(params.dataType(), to - from);
        this.v = empty ? null : Nd4j.zeros(params.dataType(), to - from);
        List<Piece> owned = new ArrayList<>();
        for (ParamSpan span : spans) {
            long lo = Math.max(from, span.offset());
            long hi = Math.min(to, span.offset() + span.numel());
            if (lo < hi) {
                owned.add(new Piece(lo, hi, span.decays(config.decay1d()), NativeMemory.bytes(params, lo, hi - lo),
                        NativeMemory.bytes(grads, lo, hi - lo), NativeMemory.bytes(m, lo - from, hi - lo),
                        NativeMemory.bytes(v, lo - from, hi - lo)));
            }
        }
        this.pieces = owned.toArray(new Piece[0]);
    }

    @Override
    public void step(long step, double lr, double gradScale) {
        double b1 = config.beta1();
        double b2 = config.beta2();
        double bc1 = 1.0 - Math.pow(b1, step);
        double bc2 = 1.0 - Math.pow(b2, step);
        double stepSize = lr / bc1;
        double invSqrtBc2 = 1.0 / Math.sqrt(bc2);
        if (to == from) {
            return; // this rank owns nothing
        }
        if (params.dataType() == DataType.DOUBLE) {
            for (Piece piece : pieces) {
                double decay = piece.decays() ? 1.0 - lr * config.weightDecay() : 1.0;
                updateDouble(piece, (int) (piece.hi() - piece.lo()), b1, b2, decay, stepSize, invSqrtBc2, gradScale);
            }
            return;
        }
        // float32: the owned range cut into fixed parts over the KernelThreads. The update is
        // elementwise, so the result does not depend on the split (nor on the shard).
        float decayOn = (float) (1.0 - lr * config.weightDecay());
        KernelThreads.forLongRange(to - from, (part, partFrom, partTo) -> {
            for (Piece piece : pieces) {
                long lo = Math.max(from + partFrom, piece.lo());
                long hi = Math.min(from + partTo, piece.hi());
                if (lo < hi) {
                    float decay = piece.decays() ? decayOn : 1f;
                    updateFloat(piece, (int) (lo - piece.lo()), (int) (hi - piece.lo()), (float) b1, (float) b2, decay,
                            (float) stepSize, (float) invSqrtBc2, (float) gradScale);
                }
            }
        });
    }

    /**
     * The float32 update of a piece's elements [lo, hi) (relative to the piece): Vector API, the same operations
     * in the same order as the tail.
     */
    private void updateFloat(Piece piece, int lo, int hi, float b1, float b2, float decay, float stepSize,
                             float invSqrtBc2, float gradScale) {
        ByteBuffer pBytes = piece.p();
        ByteBuffer gBytes = piece.g();
        ByteBuffer mBytes = piece.m();
        ByteBuffer vBytes = piece.v();
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
        int i = lo;
        for (int end = lo + S.loopBound(hi - lo); i < end; i += S.length()) {
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
        for (; i < hi; i++) {
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

    /** The float64 update of a piece's first {@code n} elements. */
    private void updateDouble(Piece piece, int n, double b1, double b2, double decay, double stepSize,
                              double invSqrtBc2, double gradScale) {
        ByteBuffer p = piece.p();
        ByteBuffer g = piece.g();
        ByteBuffer mb = piece.m();
        ByteBuffer vb = piece.v();
        double eps = config.eps();
        for (int i = 0; i < n; i++) {
            int o = i << 3;
            double gi = g.getDouble(o) * gradScale;
            double mi = b1 * mb.getDouble(o) + (1 - b1) * gi;
            double vi = b2 * vb.getDouble(o) + (1 - b2) * gi * gi;
            mb.putDouble(o, mi);
            vb.putDouble(o, vi);
            p.putDouble(o, p.getDouble(o) * decay - stepSize * mi / (Math.sqrt(vi) * invSqrtBc2 + eps));
        }
    }

    /** m and v for every owned element. */
    static long stateElements(Shard shard) {
        return 2 * shard.length();
    }

    @Override
    public long stateBytes() {
        return RowColumnStats.bytesOf(m) + RowColumnStats.bytesOf(v);
    }

    /** {@code adamw.exp_avg} and {@code adamw.exp_avg_sq}: elements [from, to) of the flat buffer's state. */
    @Override
    public Map<String, StateSlice> state() {
        Map<String, StateSlice> state = new LinkedHashMap<>();
        if (m != null) {
            long[] full = {params.length()};
            state.put("adamw.exp_avg", new StateSlice(m, full, from));
            state.put("adamw.exp_avg_sq", new StateSlice(v, full.clone(), from));
        }
        return state;
    }
}
