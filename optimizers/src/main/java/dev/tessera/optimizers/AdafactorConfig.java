package dev.tessera.optimizers;

import java.util.OptionalDouble;

/**
 * Adafactor hyperparameters (ALGORITHMS.md §1, "Hyperparameters and defaults"; names as in HF).
 *
 * @param eps1           added to {@code g^2} before averaging
 * @param eps2           floor on the parameter RMS used by parameter scaling
 * @param clipThreshold  {@code d}: the RMS of the normalised update is capped at this
 * @param decayRate      {@code beta2_t = 1 - t^decayRate}; must be negative
 * @param relativeStep   step size {@code rho_t = min(1e-2, 1/sqrt(t))} instead of the external learning rate
 * @param scaleParameter multiply the step size by {@code max(eps2, RMS(p))}
 * @param warmupInit     with a relative step, {@code rho_t = min(1e-6 t, 1/sqrt(t))}
 * @param beta1          momentum of the scaled, clipped update; empty = none (the paper's recommendation)
 * @param weightDecay    decoupled decay {@code p -= weightDecay * alpha * p}
 * @param decay1d        decay tensors of ndim < 2 (norm gains) too, as HF does; see {@link ParamSpan#decays}
 */
public record AdafactorConfig(double eps1, double eps2, double clipThreshold, double decayRate,
                              boolean relativeStep, boolean scaleParameter, boolean warmupInit,
                              OptionalDouble beta1, double weightDecay, boolean decay1d) {

    /** Matrices only are decayed. */
    public AdafactorConfig(double eps1, double eps2, double clipThreshold, double decayRate, boolean relativeStep,
                           boolean scaleParameter, boolean warmupInit, OptionalDouble beta1, double weightDecay) {
        this(eps1, eps2, clipThreshold, decayRate, relativeStep, scaleParameter, warmupInit, beta1, weightDecay,
                false);
    }

    /** HF {@code transformers.optimization.Adafactor}'s class defaults (= fairseq's class defaults). */
    public static AdafactorConfig defaults() {
        return new AdafactorConfig(1e-30, 1e-3, 1.0, -0.8, true, true, false, OptionalDouble.empty(), 0.0);
    }
}
