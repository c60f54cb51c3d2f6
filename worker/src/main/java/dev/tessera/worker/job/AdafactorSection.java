package dev.tessera.worker.job;

import dev.tessera.optimizers.AdafactorConfig;
import java.util.OptionalDouble;

/**
 * {@code optimizer.adafactor:} Adafactor's own hyperparameters (read when {@code optimizer.name: adafactor}),
 * defaulting to HF's class defaults (ALGORITHMS.md §1). {@code beta1: null} means no momentum. With
 * {@code relative_step: true} the step size is {@code min(1e-2, 1/sqrt(t))} and {@code optimizer.lr} and its
 * schedule are not used.
 */
public record AdafactorSection(double eps1, double eps2, double clipThreshold, double decayRate,
                               boolean relativeStep, boolean scaleParameter, boolean warmupInit,
                               OptionalDouble beta1, double weightDecay) {

    public static AdafactorSection defaults() {
        AdafactorConfig d = AdafactorConfig.defaults();
        return new AdafactorSection(d.eps1(), d.eps2(), d.clipThreshold(), d.decayRate(), d.relativeStep(),
                d.scaleParameter(), d.warmupInit(), d.beta1(), d.weightDecay());
    }

    public AdafactorConfig toConfig(boolean decay1d) {
        return new AdafactorConfig(eps1, eps2, clipThreshold, decayRate, relativeStep, scaleParameter, warmupInit,
                beta1, weightDecay, decay1d);
    }
}
