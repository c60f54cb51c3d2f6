package dev.tessera.optimizers;

/** AdamW (Loshchilov & Hutter): Adam with bias correction and decoupled weight decay. */
public record AdamWConfig(double beta1, double beta2, double eps, double weightDecay) {

    public static AdamWConfig defaults() {
        return new AdamWConfig(0.9, 0.999, 1e-8, 0.01);
    }
}
