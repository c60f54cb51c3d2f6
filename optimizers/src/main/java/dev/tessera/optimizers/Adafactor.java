package dev.tessera.optimizers;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Adafactor (Shazeer &amp; Stern 2018) with HF/fairseq semantics, ALGORITHMS.md §1 (NORMATIVE). Per tensor,
 * with {@code t} the 1-based optimizer step and {@code g = gradScale * grad}:
 * <pre>
 *   rho   = relative_step ? min(warmup_init ? 1e-6 t : 1e-2, 1/sqrt(t)) : lr
 *   alpha = rho * (scale_parameter ? max(eps2, RMS(p)) : 1)          RMS of p before this step
 *   b2    = 1 - t^decay_rate ;   Q = g^2 + eps1
 *   ndim &gt;= 2: R = b2 R + (1-b2) mean_r(Q) ;  C = b2 C + (1-b2) mean_c(Q)
 *             Vhat = (R / mean_r(R))[:, None] * C[None, :]             per matrix of the last two dims
 *   else:     V = b2 V + (1-b2) Q ;  Vhat = V
 *   U = alpha * (g / sqrt(Vhat)) / max(1, RMS(g / sqrt(Vhat)) / d)     RMS over the whole tensor
 *   if beta1:  M = beta1 M + (1-beta1) U ;  U = M
 *   p = p - weight_decay * alpha * p - U
 * </pre>
 * {@code g / sqrt(Vhat)} is evaluated as {@code rsqrt(R / mean_r(R)) * rsqrt(C) * g} (HF's
 * {@code _approx_sq_grad} order), so the inner loops only multiply. All arithmetic is in double, in a fixed loop
 * order; state is stored in the parameters' dtype (fp32 in training). The normalised update is computed twice (once for its RMS, once to apply it) rather than kept in
 * a tensor-sized scratch buffer, so the only scratch is one row of column sums. Weight decay follows
 * {@link ParamSpan#decays()} like AdamW (matrices only).
 */
public final class Adafactor implements Optimizer {

    private final FlatVector params;
    private final FlatVector grads;
    private final FactoredGeometry.Layout layout;
    private final AdafactorConfig config;
    private final RowColumnStats secondMoment;
    private final INDArray momentum;
    private final FlatVector m;
    private final double beta1;
    private final double[] colSums;

    public Adafactor(INDArray params, INDArray grads, List<ParamSpan> spans, AdafactorConfig config) {
        if (params.length() != grads.length() || params.dataType() != grads.dataType()) {
            throw new IllegalArgumentException("params and grads differ in length or dtype");
        }
        if (config.warmupInit() && !config.relativeStep()) {
            throw new IllegalArgumentException("Adafactor warmup_init requires relative_step");
        }
        this.params = FlatVector.of(params);
        this.grads = FlatVector.of(grads);
        this.layout = FactoredGeometry.layout(spans);
        this.config = config;
        this.secondMoment = new RowColumnStats(layout, params.dataType(), true);
        this.momentum = config.beta1().isPresent() ? Nd4j.zeros(params.dataType(), params.length()) : null;
        this.m = momentum == null ? null : FlatVector.of(momentum);
        this.beta1 = config.beta1().orElse(0.0);
        this.colSums = new double[layout.maxCols()];
    }

    @Override
    public void step(long step, double lr, double gradScale) {
        double t = step;
        double rho = config.relativeStep() ? Math.min(config.warmupInit() ? 1e-6 * t : 1e-2, 1.0 / Math.sqrt(t)) : lr;
        double beta2 = 1.0 - Math.pow(t, config.decayRate()); // t=1 gives 0: the first estimate is Q itself
        for (int s = 0; s < layout.spans().size(); s++) { // indexed: no iterator per step
            FactoredGeometry geo = layout.spans().get(s);
            if (geo.numel() == 0) {
                continue;
            }
            // Parameter scaling uses RMS(p) before this step (§1).
            double scale = config.scaleParameter() ? Math.max(config.eps2(), rmsOfParams(geo)) : 1.0;
            double alpha = scale * rho;
            double sumSquares = secondMoment.blendSquaredGradients(geo, grads, gradScale, config.eps1(), beta2,
                    colSums);
            // Update clipping over the whole tensor; decoupled decay scaled by alpha, not by lr (§1).
            double clip = Math.max(1.0, Math.sqrt(sumSquares / geo.numel()) / config.clipThreshold());
            double decay = geo.span().decays() ? config.weightDecay() * alpha : 0.0;
            if (geo.factored()) {
                applyFactored(geo, gradScale, alpha / clip, decay);
            } else {
                applyFull(geo, gradScale, alpha / clip, decay);
            }
        }
    }

    private double rmsOfParams(FactoredGeometry geo) {
        double sum = 0;
        for (int k = geo.offset(), end = k + geo.numel(); k < end; k++) {
            double p = params.get(k);
            sum += p * p;
        }
        return Math.sqrt(sum / geo.numel());
    }

    private void applyFactored(FactoredGeometry geo, double gradScale, double stepScale, double decay) {
        int rows = geo.rows();
        int cols = geo.cols();
        double[] colInv = colSums; // free again once the statistics are blended
        for (int b = 0; b < geo.batch(); b++) {
            double meanRow = secondMoment.meanRow(geo, b);
            secondMoment.inverseSqrtColumns(geo, b, colInv);
            for (int i = 0; i < rows; i++) {
                double rowInv = secondMoment.inverseSqrtRow(geo, b, i, meanRow);
                int base = geo.offset() + (b * rows + i) * cols;
                for (int j = 0; j < cols; j++) {
                    double u = rowInv * colInv[j] * (grads.get(base + j) * gradScale);
                    applyAt(base + j, stepScale * u, decay);
                }
            }
        }
    }

    private void applyFull(FactoredGeometry geo, double gradScale, double stepScale, double decay) {
        FlatVector v = secondMoment.v;
        for (int e = 0; e < geo.numel(); e++) {
            int k = geo.offset() + e;
            double u = grads.get(k) * gradScale / Math.sqrt(v.get(geo.fullOffset() + e));
            applyAt(k, stepScale * u, decay);
        }
    }

    /** Momentum of the scaled, clipped update (if any), decoupled decay, then the update. */
    private void applyAt(int k, double u, double decay) {
        double update = u;
        if (m != null) {
            update = beta1 * m.get(k) + (1 - beta1) * u;
            m.set(k, update);
        }
        double p = params.get(k);
        params.set(k, p - decay * p - update);
    }

    @Override
    public long stateBytes() {
        return secondMoment.bytes() + RowColumnStats.bytesOf(momentum);
    }

    /**
     * Per tensor, HF's names: {@code adafactor.<param>.exp_avg_sq_row} (shape[:-1]), {@code .exp_avg_sq_col}
     * (shape[:-2] + shape[-1:]), {@code .exp_avg_sq} (1-D tensors) and {@code .exp_avg} (with beta1).
     */
    @Override
    public Map<String, INDArray> state() {
        Map<String, INDArray> state = new LinkedHashMap<>();
        for (FactoredGeometry geo : layout.spans()) {
            secondMoment.addState(state, geo, "adafactor.", ".exp_avg_sq_row", ".exp_avg_sq_col", ".exp_avg_sq");
            if (momentum != null && geo.numel() > 0) {
                state.put("adafactor." + geo.span().name() + ".exp_avg",
                        RowColumnStats.view(momentum, geo.offset(), geo.fullShape()));
            }
        }
        return state;
    }
}
