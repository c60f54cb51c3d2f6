package dev.tessera.optimizers.co2;

/**
 * The settings of CO2's outer step (ALGORITHMS.md §6, "Defaults"). Errors name the NORMATIVE config key
 * ({@code co2.tau}, {@code co2.alpha}, {@code co2.beta}, {@code co2.lambda}, {@code co2.phi}), which is what a
 * user wrote; the component names say what each one is.
 *
 * @param tau           local (inner) steps per round before the parameter all-reduce is launched; {@code co2.tau}
 * @param outerLr       alpha, the outer learning rate; {@code co2.alpha}
 * @param outerMomentum beta, the outer momentum, in [0, 1); {@code co2.beta}. {@code alpha=1, beta=0} is plain
 *                      local SGD (with the one-round delay)
 * @param gapPenalty    lambda, the staleness gap penalty dividing the pseudo-gradient; {@code co2.lambda}. 1 means
 *                      no penalty; the constant {@link GapPenalty} uses it, the gap-scaled one scales it
 * @param clip          clamp the outer momentum elementwise to [-phi, phi] after every update; {@code co2.clip}
 * @param clipThreshold phi; {@code co2.phi}. Checked even when clipping is off, so turning it on cannot fail later
 */
public record Co2Config(int tau, double outerLr, double outerMomentum, double gapPenalty, boolean clip,
                        double clipThreshold) {

    public Co2Config {
        if (tau < 1) {
            throw new IllegalArgumentException("co2.tau must be >= 1 (got " + tau + ")");
        }
        // written as !(ok) so that NaN is refused too
        if (!(outerLr > 0) || Double.isInfinite(outerLr)) {
            throw new IllegalArgumentException("co2.alpha must be > 0 and finite (got " + outerLr + ")");
        }
        if (!(outerMomentum >= 0 && outerMomentum < 1)) {
            throw new IllegalArgumentException("co2.beta must be in [0, 1) (got " + outerMomentum + ")");
        }
        if (!(gapPenalty > 0) || Double.isInfinite(gapPenalty)) {
            throw new IllegalArgumentException("co2.lambda must be > 0 and finite (got " + gapPenalty + ")");
        }
        if (!(clipThreshold > 0)) {
            throw new IllegalArgumentException("co2.phi must be > 0 (got " + clipThreshold + ")");
        }
    }

    /** The reference code's defaults: tau=3, alpha=1, beta=0.5, lambda=1 (no penalty), no clipping, phi=1. */
    public static Co2Config defaults() {
        return new Co2Config(3, 1.0, 0.5, 1.0, false, 1.0);
    }
}
