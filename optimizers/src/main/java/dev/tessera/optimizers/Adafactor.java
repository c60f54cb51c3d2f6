package dev.tessera.optimizers;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Adafactor (Shazeer &amp; Stern 2018) with HF/fairseq semantics, ALGORITHMS.md §1 (NORMATIVE). Per tensor,
 * with {@code t} the 1-based optimizer step and {@code g = gradScale * grad}:
 * <pre>
 *   rho   = relative_step ? min(warmup_init ? 1e-6 t : 1e-2, 1/sqrt(t)) : lr
 *   alpha = rho * (scale_parameter ? max(eps2, RMS(p)) : 1)          RMS of p before this step
 *   b2    = 1 - t^decay_rate
 *   ndim &gt;= 2: R = b2 R + (1-b2) (mean_r(g^2) + eps1) ;  C = b2 C + (1-b2) (mean_c(g^2) + eps1)
 *             Vhat = (R / mean_r(R))[:, None] * C[None, :]             per matrix of the last two dims
 *   else:     V = b2 V + (1-b2) (g^2 + eps1) ;  Vhat = V
 *   U = alpha * (g / sqrt(Vhat)) / max(1, RMS(g / sqrt(Vhat)) / d)     RMS over the whole tensor
 *   if beta1:  M = beta1 M + (1-beta1) U ;  U = M
 *   p = p - weight_decay * alpha * p - U
 * </pre>
 * ({@code mean(g^2 + eps1) = mean(g^2) + eps1}; adding eps1 to the means lets the column means add it once
 * after the ZeRO reduction.) {@code g / sqrt(Vhat)} is evaluated as {@code rsqrt(R / mean_r(R)) * rsqrt(C) * g}
 * (HF's {@code _approx_sq_grad} order), so the inner loops only multiply.
 *
 * <p><b>ZeRO (§3.5, row sharding).</b> The rank updates only its {@link Shard}, which cuts factored tensors
 * on row boundaries only ({@link ShardPlan}). It keeps R for its rows, C for every column of the matrices it
 * owns rows of (replicated), V and M for its elements. Each step makes exactly two {@link ShardReducer} calls,
 * each on a packed buffer whose slots are fixed by the model (zeros where the rank owns nothing), so the
 * calls line up on every rank:
 * <pre>
 *   round 1: [colsum(g^2) (cols per matrix), sum(R) (1 per matrix)] for every factored tensor,
 *            then [sum(p^2)] per tensor when scale_parameter        -&gt; C, mean_r(R), RMS(p) global
 *   round 2: [sum((g / sqrt(Vhat))^2)] per tensor                  -&gt; global clip RMS
 * </pre>
 * Column sums are divided by the tensor's true row count. A single rank is this same path with one shard
 * and {@link ShardReducer#LOCAL}. All arithmetic is in double, in a fixed loop order; state is stored in the
 * parameters' dtype (fp32 in training). The normalised update is computed twice (once for its RMS, once to
 * apply it) rather than kept in a tensor-sized scratch buffer; the packed buffers and one row of column scratch
 * are allocated once. Weight decay follows {@link ParamSpan#decays} like AdamW (matrices only unless decay1d).
 */
public final class Adafactor implements Optimizer {

    private final long shardFrom;
    private final FactoredGeometry.Layout layout;
    private final AdafactorConfig config;
    private final ShardReducer reducer;
    private final RowColumnStats secondMoment;
    private final INDArray momentum; // the shard's elements, at flat index - shardFrom
    private final SpanVectors views;
    private final double beta1;
    private final double[] round1;
    private final double[] round2;
    private final double[] colInv;

    /** The single-rank optimizer over the whole buffer. */
    public Adafactor(INDArray params, INDArray grads, List<ParamSpan> spans, AdafactorConfig config) {
        this(params, grads, spans, config, Shard.whole(params.length()), ShardReducer.LOCAL);
    }

    /** The optimizer of one ZeRO rank: updates {@code shard}, sums statistics over the group by {@code reducer}. */
    public Adafactor(INDArray params, INDArray grads, List<ParamSpan> spans, AdafactorConfig config, Shard shard,
                     ShardReducer reducer) {
        shard.checkFits(params, grads);
        if (config.warmupInit() && !config.relativeStep()) {
            throw new IllegalArgumentException("Adafactor warmup_init requires relative_step");
        }
        this.shardFrom = shard.from();
        this.layout = FactoredGeometry.layout(spans, shard);
        this.config = config;
        this.reducer = reducer;
        this.secondMoment = new RowColumnStats(layout, params.dataType(), true);
        this.momentum = config.beta1().isPresent()
                ? RowColumnStats.zerosOrNull(params.dataType(), shard.length()) : null;
        this.views = new SpanVectors(layout, params, grads, momentum, shardFrom);
        this.beta1 = config.beta1().orElse(0.0);
        this.round1 = new double[layout.factoredSlots() + (config.scaleParameter() ? layout.tensors() : 0)];
        this.round2 = new double[layout.tensors()];
        this.colInv = new double[layout.maxCols()];
    }

    @Override
    public void step(long step, double lr, double gradScale) {
        double t = step;
        double rho = config.relativeStep() ? Math.min(config.warmupInit() ? 1e-6 * t : 1e-2, 1.0 / Math.sqrt(t)) : lr;
        double beta2 = 1.0 - Math.pow(t, config.decayRate()); // t=1 gives 0: the first estimate is Q itself
        List<FactoredGeometry> spans = layout.spans();
        Arrays.fill(round1, 0.0);
        Arrays.fill(round2, 0.0);
        // Round 1, local part: RMS(p) before any update, row statistics, 1-D second moments.
        for (int s = 0; s < spans.size(); s++) { // indexed: no iterator per step
            FactoredGeometry geo = spans.get(s);
            if (!geo.owns()) {
                continue;
            }
            if (config.scaleParameter()) {
                round1[geo.tensorSlot()] = sumOfSquaresOfParams(geo, views.params[s]);
            }
            if (geo.factored()) {
                secondMoment.blendRowsAndPackSums(geo, views.grads[s], gradScale, config.eps1(), beta2, round1);
            } else {
                // Elementwise; its clip sum is complete already and waits for round 2.
                round2[s] =
                        secondMoment.blendFull(geo, views.grads[s], gradScale, config.eps1(), beta2);
            }
        }
        reducer.sumInPlace(round1, round1.length);
        // Round 2: column statistics from the group's column sums, then this rank's part of sum(U^2).
        for (int s = 0; s < spans.size(); s++) {
            FactoredGeometry geo = spans.get(s);
            if (geo.owns() && geo.factored()) {
                secondMoment.blendColumns(geo, round1, config.eps1(), beta2);
                round2[s] =
                        secondMoment.sumSquaresNormalised(geo, views.grads[s], gradScale, round1, colInv);
            }
        }
        reducer.sumInPlace(round2, round2.length);
        for (int s = 0; s < spans.size(); s++) {
            FactoredGeometry geo = spans.get(s);
            if (!geo.owns()) {
                continue;
            }
            // Parameter scaling uses the global RMS(p) before this step (§1, §3.5).
            double scale = config.scaleParameter()
                    ? Math.max(config.eps2(), Math.sqrt(round1[geo.tensorSlot()] / geo.numel())) : 1.0;
            double alpha = scale * rho;
            // Update clipping over the whole tensor (global); decoupled decay scaled by alpha, not by lr (§1).
            double sumSquares = round2[s];
            double clip = Math.max(1.0, Math.sqrt(sumSquares / geo.numel()) / config.clipThreshold());
            double decay = geo.span().decays(config.decay1d()) ? config.weightDecay() * alpha : 0.0;
            if (geo.factored()) {
                applyFactored(geo, views.grads[s], views.params[s], views.momentum[s], gradScale, alpha / clip, decay);
            } else {
                applyFull(geo, views.grads[s], views.params[s], views.momentum[s], gradScale, alpha / clip, decay);
            }
        }
    }

    private static double sumOfSquaresOfParams(FactoredGeometry geo, FlatVector params) {
        double sum = 0;
        for (int k = geo.ownFrom(), end = geo.ownTo(); k < end; k++) {
            double p = params.get(k);
            sum += p * p;
        }
        return sum;
    }

    private void applyFactored(FactoredGeometry geo, FlatVector grads, FlatVector params, FlatVector m,
                               double gradScale, double stepScale, double decay) {
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
            for (int j = 0; j < cols; j++) {
                double u = rowInv * colInv[j] * (grads.get(base + j) * gradScale);
                applyAt(params, m, base + j, base + j - geo.ownFrom(), stepScale * u, decay);
            }
        }
    }

    private void applyFull(FactoredGeometry geo, FlatVector grads, FlatVector params, FlatVector m, double gradScale,
                           double stepScale, double decay) {
        FlatVector v = secondMoment.v;
        for (int e = geo.ownFrom(); e < geo.ownTo(); e++) {
            double u = grads.get(e) * gradScale / Math.sqrt(v.get(geo.fullOffset() + e - geo.ownFrom()));
            applyAt(params, m, e, e - geo.ownFrom(), stepScale * u, decay);
        }
    }

    /**
     * Momentum of the scaled, clipped update (if any), decoupled decay, then the update: tensor element {@code k},
     * its momentum at {@code at}.
     */
    private void applyAt(FlatVector params, FlatVector m, int k, int at, double u, double decay) {
        double update = u;
        if (m != null) {
            update = beta1 * m.get(at) + (1 - beta1) * u;
            m.set(at, update);
        }
        double p = params.get(k);
        params.set(k, p - decay * p - update);
    }

    /** The second moment's rows, columns and 1-D elements for {@code shard}, and momentum if beta1 is set. */
    static long stateElements(List<ParamSpan> spans, Shard shard, AdafactorConfig config) {
        FactoredGeometry.Layout layout = FactoredGeometry.layout(spans, shard);
        long momentum = config.beta1().isPresent() ? shard.length() : 0;
        return (long) layout.rowStats() + layout.colStats() + layout.fullStats() + momentum;
    }

    @Override
    public long stateBytes() {
        return secondMoment.bytes() + RowColumnStats.bytesOf(momentum);
    }

    /**
     * Per owned tensor, HF's names: {@code adafactor.<param>.exp_avg_sq_row} (shape[:-1], the owned rows),
     * {@code .exp_avg_sq_col} (shape[:-2] + shape[-1:], replicated), {@code .exp_avg_sq} (1-D tensors) and
     * {@code .exp_avg} (with beta1; the owned elements).
     */
    @Override
    public Map<String, StateSlice> state() {
        Map<String, StateSlice> state = new LinkedHashMap<>();
        for (FactoredGeometry geo : layout.spans()) {
            secondMoment.addState(state, geo, "adafactor.", ".exp_avg_sq_row", ".exp_avg_sq_col", ".exp_avg_sq");
            if (momentum != null && geo.owns()) {
                state.put("adafactor." + geo.span().name() + ".exp_avg", new StateSlice(
                        RowColumnStats.view(momentum, geo.offset() + geo.ownFrom() - shardFrom,
                                geo.ownTo() - geo.ownFrom()), geo.fullShape(), geo.ownFrom()));
            }
        }
        return state;
    }
}
