package dev.tessera.worker.job;

import dev.tessera.optimizers.CAMEConfig;

/**
 * {@code optimizer.came:} CAME's own hyperparameters (read when {@code optimizer.name: came}), defaulting to the
 * official code's (ALGORITHMS.md §2). The learning rate and its schedule are {@code optimizer.lr},
 * {@code min_lr} and {@code warmup_steps}.
 */
public record CameSection(double beta1, double beta2, double beta3, double eps1, double eps2, double clipThreshold,
                          double weightDecay) {

    public static CameSection defaults() {
        CAMEConfig d = CAMEConfig.defaults();
        return new CameSection(d.beta1(), d.beta2(), d.beta3(), d.eps1(), d.eps2(), d.clipThreshold(),
                d.weightDecay());
    }

    public CAMEConfig toConfig(boolean decay1d) {
        return new CAMEConfig(beta1, beta2, beta3, eps1, eps2, clipThreshold, weightDecay, decay1d);
    }
}
