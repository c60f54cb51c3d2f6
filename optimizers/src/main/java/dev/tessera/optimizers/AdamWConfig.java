package dev.tessera.optimizers;

/**
 * AdamW (Loshchilov & Hutter): Adam with bias correction and decoupled weight decay.
 *
 * @param decay1d decay tensors of ndim < 2 (norm gains) too; see {@link ParamSpan#decays}
 */
public record AdamWConfig(double beta1, double beta2, double eps, double weightDecay, boolean decay1d) {

    /** Matrices only are decayed. */
    public AdamWConfig(double beta1, double beta2, double eps, double weightDecay) {
        this(beta1, beta2, eps, weightDecay, false);
    }

    public static AdamWConfig defaults() {
        return new AdamWConfig(0.9, 0.999, 1e-8, 0.01);
    }
}
