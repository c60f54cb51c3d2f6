package dev.tessera.optimizers.co2;

import dev.tessera.optimizers.ParamSpan;

/**
 * CO2's staleness gap penalty {@code lambda(l, gap, Delta)} (ALGORITHMS.md §6): the pseudo-gradient measured from
 * {@code x_{t-1}} is applied at {@code x_t}, and {@code Delta = (x_{t-1} - ybar_{t-1}) / lambda} is shrunk by
 * it. It is evaluated once per parameter span (tensor) per outer step, so a layer-wise rule can be plugged in.
 *
 * <p>Inputs are L2 norms over the part of the span the outer step owns: {@code gapNorm = ||x_t - x_{t-1}||}
 * (the staleness gap, {@code -alpha m_prev}) and {@code deltaNorm = ||x_{t-1} - ybar_{t-1}||} (the pseudo-gradient
 * before the penalty). Under ZeRO a tensor cut between two ranks gets one penalty per part: the whole-tensor
 * norm would need a reduction across ranks, which the constant default does not need and this piece does not do.
 */
public interface GapPenalty {

    /** The divisor for this span's pseudo-gradient; must be positive and finite. */
    double lambda(ParamSpan span, double gapNorm, double deltaNorm);

    /** Whether {@link #lambda} reads the norms; when not, the outer step skips the pass that computes them. */
    default boolean usesNorms() {
        return true;
    }

    /** The reference code's rule and the NORMATIVE default: the same {@code lambda} for every span. */
    static GapPenalty constant(double lambda) {
        return new Constant(lambda);
    }

    /** {@link GapScaled}: {@code lambda * (1 + ||gap|| / ||Delta||)} per span. */
    static GapPenalty gapScaled(double lambda) {
        return new GapScaled(lambda);
    }

    /** Every penalty's base {@code lambda}: positive and finite. */
    private static void requireValid(double lambda) {
        if (!(lambda > 0) || Double.isInfinite(lambda)) {
            throw new IllegalArgumentException("co2.lambda must be > 0 and finite (got " + lambda + ")");
        }
    }

    /** {@code co2_gap_penalty} of the reference code: a scalar, 1 meaning no penalty. */
    record Constant(double lambda) implements GapPenalty {
        public Constant {
            requireValid(lambda);
        }

        @Override
        public double lambda(ParamSpan span, double gapNorm, double deltaNorm) {
            return lambda;
        }

        @Override
        public boolean usesNorms() {
            return false;
        }
    }

    /**
     * A gap-based penalty that is OUR CHOICE, not the paper's: the paper computes its coefficient layer-wise
     * from the size of the staleness gap, but its formula was not retrieved (ALGORITHMS.md §6 marks it
     * UNVERIFIED). Here, per span,
     * <pre>
     *   lambda_l = lambda * (1 + ||gap_l|| / ||Delta_l||)
     * </pre>
     * so the penalty grows with how far the parameters moved since the pseudo-gradient was measured, relative
     * to the pseudo-gradient itself. It keeps the properties a gap penalty needs: with no gap (no staleness,
     * or the first outer step) it is exactly the constant {@code lambda}; a gap as large as the step halves the
     * step again; and the step {@code ||Delta_l|| / lambda_l} stays below {@code ||Delta_l|| / lambda} and
     * below {@code ||Delta_l||^2 / (lambda ||gap_l||)}, so a stale pseudo-gradient that is small next to the
     * distance already travelled is damped the most. A zero pseudo-gradient gives {@code lambda} (the step is
     * zero whatever the divisor).
     */
    record GapScaled(double lambda) implements GapPenalty {
        public GapScaled {
            requireValid(lambda);
        }

        @Override
        public double lambda(ParamSpan span, double gapNorm, double deltaNorm) {
            if (!(deltaNorm > 0) || !(gapNorm > 0)) {
                return lambda;
            }
            return lambda * (1.0 + gapNorm / deltaNorm);
        }
    }
}
