package dev.tessera.coordinator.config;

import dev.tessera.optimizers.AdafactorConfig;
import java.util.LinkedHashMap;
import java.util.Map;
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

    static AdafactorSection read(ConfigValues v) {
        return new AdafactorSection(
                v.getDouble("optimizer.adafactor.eps1"),
                v.getDouble("optimizer.adafactor.eps2"),
                v.getDouble("optimizer.adafactor.clip_threshold"),
                v.getDouble("optimizer.adafactor.decay_rate"),
                v.getBoolean("optimizer.adafactor.relative_step"),
                v.getBoolean("optimizer.adafactor.scale_parameter"),
                v.getBoolean("optimizer.adafactor.warmup_init"),
                v.getOptionalDouble("optimizer.adafactor.beta1"),
                v.getDouble("optimizer.adafactor.weight_decay"));
    }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("eps1", eps1);
        m.put("eps2", eps2);
        m.put("clip_threshold", clipThreshold);
        m.put("decay_rate", decayRate);
        m.put("relative_step", relativeStep);
        m.put("scale_parameter", scaleParameter);
        m.put("warmup_init", warmupInit);
        m.put("beta1", beta1.isPresent() ? beta1.getAsDouble() : null);
        m.put("weight_decay", weightDecay);
        return m;
    }
}
