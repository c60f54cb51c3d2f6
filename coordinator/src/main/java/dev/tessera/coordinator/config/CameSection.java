package dev.tessera.coordinator.config;

import dev.tessera.optimizers.CAMEConfig;
import java.util.LinkedHashMap;
import java.util.Map;

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

    static CameSection read(ConfigValues v) {
        return new CameSection(
                v.getDouble("optimizer.came.beta1"),
                v.getDouble("optimizer.came.beta2"),
                v.getDouble("optimizer.came.beta3"),
                v.getDouble("optimizer.came.eps1"),
                v.getDouble("optimizer.came.eps2"),
                v.getDouble("optimizer.came.clip_threshold"),
                v.getDouble("optimizer.came.weight_decay"));
    }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("beta1", beta1);
        m.put("beta2", beta2);
        m.put("beta3", beta3);
        m.put("eps1", eps1);
        m.put("eps2", eps2);
        m.put("clip_threshold", clipThreshold);
        m.put("weight_decay", weightDecay);
        return m;
    }
}
