package dev.tessera.optimizers;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * CAME (Luo et al., ACL 2023) as in the official code, ALGORITHMS.md §2 (NORMATIVE). Per tensor, with
 * {@code g = gradScale * grad}, constant betas and no bias correction:
 * <pre>
 *   Q = g^2 + eps1
 *   ndim &gt;= 2: r = b2 r + (1-b2) mean_r(Q) ;  c = b2 c + (1-b2) mean_c(Q)
 *             u = g / sqrt((r / mean_r(r))[:, None] * c[None, :])       per matrix of the last two dims
 *   else:     v = b2 v + (1-b2) Q ;  u = g / sqrt(v)
 *   u_hat = u / max(1, RMS(u) / d)                                       RMS over the whole tensor
 *   m = b1 m + (1-b1) u_hat
 *   ndim &gt;= 2: I = (u_hat - m)^2 + eps2
 *             R = b3 R + (1-b3) mean_r(I) ;  C = b3 C + (1-b3) mean_c(I)
 *             step = m / sqrt((R / mean_r(R))[:, None] * C[None, :])
 *   else:     step = m                                                   1-D: no confidence scaling (§2)
 *   p = p - lr * weight_decay * p - lr * step
 * </pre>
 * Both factored inverse square roots are evaluated as {@code rsqrt(R / mean_r(R)) * rsqrt(C)} (the official
 * code's {@code _approx_sq_grad}). Arithmetic in double in a fixed loop order; state in the parameters' dtype. {@code u} is recomputed from
 * the stored statistics instead of being kept in a tensor-sized scratch buffer. Weight decay follows
 * {@link ParamSpan#decays()} like AdamW (matrices only).
 */
public final class CAME implements Optimizer {

    private final FlatVector params;
    private final FlatVector grads;
    private final FactoredGeometry.Layout layout;
    private final CAMEConfig config;
    private final RowColumnStats secondMoment;
    private final RowColumnStats instability;
    private final INDArray momentum;
    private final FlatVector m;
    private final double[] colSums;
    private final double[] colInv;

    public CAME(INDArray params, INDArray grads, List<ParamSpan> spans, CAMEConfig config) {
        if (params.length() != grads.length() || params.dataType() != grads.dataType()) {
            throw new IllegalArgumentException("params and grads differ in length or dtype");
        }
        this.params = FlatVector.of(params);
        this.grads = FlatVector.of(grads);
        this.layout = FactoredGeometry.layout(spans);
        this.config = config;
        this.secondMoment = new RowColumnStats(layout, params.dataType(), true);
        this.instability = new RowColumnStats(layout, params.dataType(), false); // none for 1-D (§2)
        this.momentum = Nd4j.zeros(params.dataType(), params.length());
        this.m = FlatVector.of(momentum);
        this.colSums = new double[layout.maxCols()];
        this.colInv = new double[layout.maxCols()];
    }

    /** {@code step} is unused: CAME has no step-dependent schedule or bias correction. */
    @Override
    public void step(long step, double lr, double gradScale) {
        for (int s = 0; s < layout.spans().size(); s++) { // indexed: no iterator per step
            FactoredGeometry geo = layout.spans().get(s);
            if (geo.numel() == 0) {
                continue;
            }
            double sumSquares = secondMoment.blendSquaredGradients(geo, grads, gradScale, config.eps1(),
                    config.beta2(), colSums);
            // Clipping as in Adafactor, over the whole tensor; decoupled decay p *= (1 - lr*wd) (§2).
            double clip = Math.max(1.0, Math.sqrt(sumSquares / geo.numel()) / config.clipThreshold());
            double decay = geo.span().decays() ? lr * config.weightDecay() : 0.0;
            if (geo.factored()) {
                updateMomentumAndInstability(geo, gradScale, clip);
                applyFactored(geo, lr, decay);
            } else {
                applyFull(geo, gradScale, clip, lr, decay);
            }
        }
    }

    /** {@code m} from the clipped update, then the row and column EMAs of {@code I = (u_hat - m)^2 + eps2}. */
    private void updateMomentumAndInstability(FactoredGeometry geo, double gradScale, double clip) {
        double b1 = config.beta1();
        double b3 = config.beta3();
        double eps2 = config.eps2();
        int rows = geo.rows();
        int cols = geo.cols();
        for (int b = 0; b < geo.batch(); b++) {
            double meanRow = secondMoment.meanRow(geo, b);
            secondMoment.inverseSqrtColumns(geo, b, colInv);
            Arrays.fill(colSums, 0, cols, 0.0);
            for (int i = 0; i < rows; i++) {
                double rowInv = secondMoment.inverseSqrtRow(geo, b, i, meanRow);
                int base = geo.offset() + (b * rows + i) * cols;
                double rowSum = 0;
                for (int j = 0; j < cols; j++) {
                    int k = base + j;
                    double u = rowInv * colInv[j] * (grads.get(k) * gradScale);
                    double uHat = u / clip;
                    m.set(k, b1 * m.get(k) + (1 - b1) * uHat);
                    double d = uHat - m.get(k); // read back, so fp32 measures against the stored momentum
                    double inst = d * d + eps2;
                    rowSum += inst;
                    colSums[j] += inst;
                }
                instability.blendRow(geo, b, i, rowSum, b3);
            }
            instability.blendColumns(geo, b, colSums, b3);
        }
    }

    /** {@code p = p - lr*wd*p - lr * m / sqrt(S)}, S the factored instability estimate. */
    private void applyFactored(FactoredGeometry geo, double lr, double decay) {
        int rows = geo.rows();
        int cols = geo.cols();
        for (int b = 0; b < geo.batch(); b++) {
            double meanRow = instability.meanRow(geo, b);
            instability.inverseSqrtColumns(geo, b, colInv);
            for (int i = 0; i < rows; i++) {
                double rowInv = instability.inverseSqrtRow(geo, b, i, meanRow);
                int base = geo.offset() + (b * rows + i) * cols;
                for (int j = 0; j < cols; j++) {
                    int k = base + j;
                    double stepDir = rowInv * colInv[j] * m.get(k);
                    double p = params.get(k);
                    params.set(k, p - decay * p - lr * stepDir);
                }
            }
        }
    }

    /** 1-D: {@code m} from the clipped update and {@code p = p - lr*wd*p - lr*m}. */
    private void applyFull(FactoredGeometry geo, double gradScale, double clip, double lr, double decay) {
        double b1 = config.beta1();
        FlatVector v = secondMoment.v;
        for (int e = 0; e < geo.numel(); e++) {
            int k = geo.offset() + e;
            double uHat = grads.get(k) * gradScale / Math.sqrt(v.get(geo.fullOffset() + e)) / clip;
            m.set(k, b1 * m.get(k) + (1 - b1) * uHat);
            double p = params.get(k);
            params.set(k, p - decay * p - lr * m.get(k));
        }
    }

    @Override
    public long stateBytes() {
        return secondMoment.bytes() + instability.bytes() + RowColumnStats.bytesOf(momentum);
    }

    /**
     * Per tensor, the official code's names: {@code came.<param>.exp_avg}, {@code .exp_avg_sq_row},
     * {@code .exp_avg_sq_col}, {@code .exp_avg_res_row}, {@code .exp_avg_res_col} (matrices) and
     * {@code .exp_avg_sq} (1-D tensors).
     */
    @Override
    public Map<String, INDArray> state() {
        Map<String, INDArray> state = new LinkedHashMap<>();
        for (FactoredGeometry geo : layout.spans()) {
            if (geo.numel() == 0) {
                continue;
            }
            state.put("came." + geo.span().name() + ".exp_avg",
                    RowColumnStats.view(momentum, geo.offset(), geo.fullShape()));
            secondMoment.addState(state, geo, "came.", ".exp_avg_sq_row", ".exp_avg_sq_col", ".exp_avg_sq");
            instability.addState(state, geo, "came.", ".exp_avg_res_row", ".exp_avg_res_col", "");
        }
        return state;
    }
}
