package dev.tessera.optimizers;

/**
 * CAME hyperparameters (ALGORITHMS.md §2, "Defaults (official code)"); the learning rate comes from the
 * schedule.
 *
 * @param beta1         momentum of the clipped update
 * @param beta2         EMA of the squared gradient (constant: no schedule, no bias correction)
 * @param beta3         EMA of the instability {@code (u_hat - m)^2}
 * @param eps1          added to {@code g^2} before averaging
 * @param eps2          added to the instability before averaging
 * @param clipThreshold {@code d}: the RMS of the normalised update is capped at this
 * @param weightDecay   decoupled decay {@code p -= lr * weightDecay * p}
 * @param decay1d       decay tensors of ndim < 2 (norm gains) too, as the official code does; see
 *                      {@link ParamSpan#decays}
 */
public record CAMEConfig(double beta1, double beta2, double beta3, double eps1, double eps2, double clipThreshold,
                         double weightDecay, boolean decay1d) {

    /** Matrices only are decayed. */
    public CAMEConfig(double beta1, double beta2, double beta3, double eps1, double eps2, double clipThreshold,
                      double weightDecay) {
        this(beta1, beta2, beta3, eps1, eps2, clipThreshold, weightDecay, false);
    }

    /** {@code yangluo7/CAME} {@code came_pytorch/CAME.py}'s defaults. */
    public static CAMEConfig defaults() {
        return new CAMEConfig(0.9, 0.999, 0.9999, 1e-30, 1e-16, 1.0, 0.0);
    }
}
