package dev.tessera.optimizers;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * CAME (Luo et al., ACL 2023) as in the official code, ALGORITHMS.md §2 (NORMATIVE). Per tensor, with
 * {@code g = gradScale * grad}, constant betas and no bias correction:
 * <pre>
 *   ndim &gt;= 2: r = b2 r + (1-b2) (mean_r(g^2) + eps1) ;  c = b2 c + (1-b2) (mean_c(g^2) + eps1)
 *             u = g / sqrt((r / mean_r(r))[:, None] * c[None, :])       per matrix of the last two dims
 *   else:     v = b2 v + (1-b2) (g^2 + eps1) ;  u = g / sqrt(v)
 *   u_hat = u / max(1, RMS(u) / d)                                       RMS over the whole tensor
 *   m = b1 m + (1-b1) u_hat
 *   ndim &gt;= 2: I = (u_hat - m)^2 + eps2
 *             R = b3 R + (1-b3) mean_r(I) ;  C = b3 C + (1-b3) mean_c(I)
 *             step = m / sqrt((R / mean_r(R))[:, None] * C[None, :])
 *   else:     step = m                                                   1-D: no confidence scaling (§2)
 *   p = p - lr * weight_decay * p - lr * step
 * </pre>
 * ({@code mean(g^2 + eps1) = mean(g^2) + eps1}, so eps1 is added to the means, once after the ZeRO reduction.)
 * Both factored inverse square roots are evaluated as {@code rsqrt(R / mean_r(R)) * rsqrt(C)} (the official
 * code's {@code _approx_sq_grad}).
 *
 * <p><b>ZeRO (§3.5, row sharding).</b> The rank updates only its {@link Shard}, which cuts factored tensors
 * on row boundaries only ({@link ShardPlan}). It keeps r and R for its rows, c and C for every column of the
 * matrices it owns rows of (replicated), v and m for its elements. Each step makes exactly three
 * {@link ShardReducer} calls on packed buffers whose slots are fixed by the model (zeros where the rank owns
 * nothing), so the calls line up on every rank:
 * <pre>
 *   round 1: [colsum(g^2) (cols per matrix), sum(r) (1 per matrix)] for every factored tensor -&gt; c, mean_r(r)
 *   round 2: [sum(u^2)] per tensor                                  -&gt; global clip RMS
 *   round 3: [colsum(I) (cols per matrix), sum(R) (1 per matrix)]   -&gt; C, mean_r(R)
 * </pre>
 * Column sums are divided by the tensor's true row count. A single rank is this same path with one shard and
 * {@link ShardReducer#LOCAL}. Arithmetic in double in a fixed loop order; state in the parameters' dtype.
 * {@code u} is recomputed from the stored statistics instead of being kept in a tensor-sized scratch buffer; the
 * packed buffers and one row of column scratch are allocated once. Weight decay follows
 * {@link ParamSpan#decays} like AdamW (matrices only unless decay1d).
 */
public final class CAME implements Optimizer {

    private final long shardFrom;
    private final FactoredGeometry.Layout layout;
    private final CAMEConfig config;
    private final ShardReducer reducer;
    private final RowColumnStats secondMoment;
    private final RowColumnStats instability;
    private final INDArray momentum; // the shard's elements, at flat index - shardFrom
    private final SpanVectors views;
    private final double[] round1;
    private final double[] round2;
    private final double[] round3;
    private final double[] colInv;

    /** The single-rank optimizer over the whole buffer. */
    public CAME(INDArray params, INDArray grads, List<ParamSpan> spans, CAMEConfig config) {
        this(params, grads, spans, config, Shard.whole(params.length()), ShardReducer.LOCAL);
    }

    /** The optimizer of one ZeRO rank: updates {@code shard}, sums statistics over the group by {@code reducer}. */
    public CAME(INDArray params, INDArray grads, List<ParamSpan> spans, CAMEConfig config, Shard shard,
                ShardReducer reducer) {
        shard.checkFits(params, grads);
        this.shardFrom = shard.from();
        this.layout = FactoredGeometry.layout(spans, shard);
        this.config = config;
        this.reducer = reducer;
        this.secondMoment = new RowColumnStats(layout, params.dataType(), true);
        this.instability = new RowColumnStats(layout, params.dataType(), false); // none for 1-D (§2)
        this.momentum = RowColumnStats.zerosOrNull(params.dataType(), shard.length());
        this.views = new SpanVectors(layout, params, grads, momentum, shardFrom);
        this.round1 = new double[layout.factoredSlots()];
        this.round2 = new double[layout.tensors()];
        this.round3 = new double[layout.factoredSlots()];
        this.colInv = new double[layout.maxCols()];
    }

    /** {@code step} is unused: CAME has no step-dependent schedule or bias correction. */
    @Override
    public void step(long step, double lr, double gradScale) {
        double b2 = config.beta2();
        double b3 = config.beta3();
        List<FactoredGeometry> spans = layout.spans();
        Arrays.fill(round1, 0.0);
        Arrays.fill(round2, 0.0);
        Arrays.fill(round3, 0.0);
        // Round 1, local part: row statistics of g^2, and the 1-D second moments (elementwise, complete).
        for (int s = 0; s < spans.size(); s++) { // indexed: no iterator per step
            FactoredGeometry geo = spans.get(s);
            if (!geo.owns()) {
                continue;
            }
            if (geo.factored()) {
                secondMoment.blendRowsAndPackSums(geo, views.grads[s], gradScale, config.eps1(), b2, round1);
            } else {
                round2[s] = secondMoment.blendFull(geo, views.grads[s], gradScale, config.eps1(), b2);
            }
        }
        reducer.sumInPlace(round1, round1.length);
        // Round 2: column statistics of g^2 from the group's sums, then this rank's part of sum(u^2).
        for (int s = 0; s < spans.size(); s++) {
            FactoredGeometry geo = spans.get(s);
            if (geo.owns() && geo.factored()) {
                secondMoment.blendColumns(geo, round1, config.eps1(), b2);
                round2[s] = secondMoment.sumSquaresNormalised(geo, views.grads[s], gradScale, round1, colInv);
            }
        }
        reducer.sumInPlace(round2, round2.length);
        // Round 3, local part: momentum of the globally clipped update; instability rows; 1-D tensors finish.
        for (int s = 0; s < spans.size(); s++) {
            FactoredGeometry geo = spans.get(s);
            if (!geo.owns()) {
                continue;
            }
            // Clipping as in Adafactor, over the whole tensor; decoupled decay p -= (lr*wd)*p as the official code (§2).
            double clip = Math.max(1.0, Math.sqrt(round2[s] / geo.numel()) / config.clipThreshold());
            if (geo.factored()) {
                updateMomentumAndInstability(geo, views.grads[s], views.momentum[s], gradScale, clip);
            } else {
                applyFull(geo, views.grads[s], views.params[s], views.momentum[s], gradScale, clip, lr, decay(geo, lr));
            }
        }
        reducer.sumInPlace(round3, round3.length);
        for (int s = 0; s < spans.size(); s++) {
            FactoredGeometry geo = spans.get(s);
            if (geo.owns() && geo.factored()) {
                instability.blendColumns(geo, round3, 0.0, b3); // eps2 is inside I already
                applyFactored(geo, views.params[s], views.momentum[s], lr, decay(geo, lr));
            }
        }
    }

    /**
     * {@code m} from the clipped update over the owned rows, then the row EMA of
     * {@code I = (u_hat - m)^2 + eps2} (local) and this rank's column and row sums of it into round 3.
     */
    private void updateMomentumAndInstability(FactoredGeometry geo, FlatVector grads, FlatVector m, double gradScale,
                                              double clip) {
        double b1 = config.beta1();
        double b3 = config.beta3();
        double eps2 = config.eps2();
        int rows = geo.rows();
        int cols = geo.cols();
        int b = -1;
        double meanRow = 0;
        for (int fr = geo.firstRow(); fr < geo.endRow(); fr++) {
            if (fr / rows != b) {
                b = fr / rows;
                meanRow = round1[geo.rowSumSlot() + b] / rows;
                secondMoment.inverseSqrtColumns(geo, b, colInv);
            }
            double rowInv = secondMoment.inverseSqrtRow(geo, fr, meanRow);
            int base = fr * cols;
            int colAt = geo.colSlot() + b * cols;
            double rowSum = 0;
            for (int j = 0; j < cols; j++) {
                int k = base + j;
                int at = k - geo.ownFrom();
                double u = rowInv * colInv[j] * (grads.get(k) * gradScale);
                double uHat = u / clip;
                m.set(at, b1 * m.get(at) + (1 - b1) * uHat);
                double d = uHat - m.get(at); // read back, so fp32 measures against the stored momentum
                double inst = d * d + eps2;
                rowSum += inst;
                round3[colAt + j] += inst;
            }
            round3[geo.rowSumSlot() + b] += instability.blendRow(geo, fr, rowSum / cols, b3);
        }
    }

    /** {@code p = p - lr*wd*p - lr * m / sqrt(S)} over the owned rows, S the factored instability estimate. */
    private double decay(FactoredGeometry geo, double lr) {
        return geo.span().decays(config.decay1d()) ? lr * config.weightDecay() : 0.0;
    }

    private void applyFactored(FactoredGeometry geo, FlatVector params, FlatVector m, double lr, double decay) {
        int rows = geo.rows();
        int cols = geo.cols();
        int b = -1;
        double meanRow = 0;
        for (int fr = geo.firstRow(); fr < geo.endRow(); fr++) {
            if (fr / rows != b) {
                b = fr / rows;
                meanRow = round3[geo.rowSumSlot() + b] / rows;
                instability.inverseSqrtColumns(geo, b, colInv);
            }
            double rowInv = instability.inverseSqrtRow(geo, fr, meanRow);
            int base = fr * cols;
            for (int j = 0; j < cols; j++) {
                int k = base + j;
                double stepDir = rowInv * colInv[j] * m.get(k - geo.ownFrom());
                double p = params.get(k);
                params.set(k, p - decay * p - lr * stepDir);
            }
        }
    }

    /** 1-D, owned elements: {@code m} from the clipped update and {@code p = p - lr*wd*p - lr*m}. */
    private void applyFull(FactoredGeometry geo, FlatVector grads, FlatVector params, FlatVector m, double gradScale,
                           double clip, double lr, double decay) {
        double b1 = config.beta1();
        FlatVector v = secondMoment.v;
        for (int e = geo.ownFrom(); e < geo.ownTo(); e++) {
            int at = e - geo.ownFrom();
            double uHat = grads.get(e) * gradScale / Math.sqrt(v.get(geo.fullOffset() + at)) / clip;
            m.set(at, b1 * m.get(at) + (1 - b1) * uHat);
            double p = params.get(e);
            params.set(e, p - decay * p - lr * m.get(at));
        }
    }

    /**
     * Momentum for every owned element, the second moment's rows, columns and 1-D elements, and the
     * instability's rows and columns.
     */
    static long stateElements(List<ParamSpan> spans, Shard shard) {
        FactoredGeometry.Layout layout = FactoredGeometry.layout(spans, shard);
        return shard.length() + 2L * (layout.rowStats() + layout.colStats()) + layout.fullStats();
    }

    @Override
    public long stateBytes() {
        return secondMoment.bytes() + instability.bytes() + RowColumnStats.bytesOf(momentum);
    }

    /**
     * Per owned tensor, the official code's names: {@code came.<param>.exp_avg} (owned elements),
     * {@code .exp_avg_sq_row}, {@code .exp_avg_sq_col}, {@code .exp_avg_res_row}, {@code .exp_avg_res_col}
     * (matrices: owned rows, replicated columns) and {@code .exp_avg_sq} (1-D tensors).
     */
    @Override
    public Map<String, StateSlice> state() {
        Map<String, StateSlice> state = new LinkedHashMap<>();
        for (FactoredGeometry geo : layout.spans()) {
            if (!geo.owns()) {
                continue;
            }
            state.put("came." + geo.span().name() + ".exp_avg", new StateSlice(
                    RowColumnStats.view(momentum, geo.offset() + geo.ownFrom() - shardFrom,
                            geo.ownTo() - geo.ownFrom()), geo.fullShape(), geo.ownFrom()));
            secondMoment.addState(state, geo, "came.", ".exp_avg_sq_row", ".exp_avg_sq_col", ".exp_avg_sq");
            instability.addState(state, geo, "came.", ".exp_avg_res_row", ".exp_avg_res_col", "");
        }
        return state;
    }
}
