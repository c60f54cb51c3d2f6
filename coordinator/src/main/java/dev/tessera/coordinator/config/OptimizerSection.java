package dev.tessera.coordinator.config;

import dev.tessera.optimizers.AdamWConfig;
import dev.tessera.optimizers.OptimizerSpec;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code optimizer:} the optimizer and its LR schedule (linear warmup, then cosine decay to {@code min_lr}).
 * {@code weight_decay}, {@code beta1}, {@code beta2} and {@code eps} are AdamW's; Adafactor and CAME read theirs
 * from their own subsections, whose defaults are those of ALGORITHMS.md §1-2. {@code decay_1d} holds for all three:
 * false decays matrices only, true every parameter (norm gains too), as HF Adafactor and the official CAME do.
 */
public record OptimizerSection(OptimizerKind name, double lr, double minLr, int warmupSteps, double weightDecay,
                               double beta1, double beta2, double eps, double gradClip,
                               AdafactorSection adafactor, CameSection came, boolean decay1d) {

    /** The shared and AdamW fields, with Adafactor's and CAME's subsections at their defaults. */
    public OptimizerSection(OptimizerKind name, double lr, double minLr, int warmupSteps, double weightDecay,
                            double beta1, double beta2, double eps, double gradClip) {
        this(name, lr, minLr, warmupSteps, weightDecay, beta1, beta2, eps, gradClip, AdafactorSection.defaults(),
                CameSection.defaults(), false);
    }

    /** What a replica builds its optimizer from. */
    public OptimizerSpec toSpec() {
        return new OptimizerSpec(ConfigValues.yamlName(name), new AdamWConfig(beta1, beta2, eps, weightDecay, decay1d),
                adafactor.toConfig(decay1d), came.toConfig(decay1d));
    }

    public static OptimizerSection defaults() {
        return new OptimizerSection(OptimizerKind.ADAMW, 4.0e-3, 4.0e-4, 100, 0.1, 0.9, 0.95, 1.0e-8, 1.0);
    }

    static OptimizerSection read(ConfigValues v) {
        return new OptimizerSection(
                v.getEnum("optimizer.name", OptimizerKind.class),
                v.getDouble("optimizer.lr"),
                v.getDouble("optimizer.min_lr"),
                v.getInt("optimizer.warmup_steps"),
                v.getDouble("optimizer.weight_decay"),
                v.getDouble("optimizer.beta1"),
                v.getDouble("optimizer.beta2"),
                v.getDouble("optimizer.eps"),
                v.getDouble("optimizer.grad_clip"),
                AdafactorSection.read(v),
                CameSection.read(v),
                v.getBoolean("optimizer.decay_1d"));
    }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", ConfigValues.yamlName(name));
        m.put("lr", lr);
        m.put("min_lr", minLr);
        m.put("warmup_steps", warmupSteps);
        m.put("weight_decay", weightDecay);
        m.put("beta1", beta1);
        m.put("beta2", beta2);
        m.put("eps", eps);
        m.put("grad_clip", gradClip);
        m.put("decay_1d", decay1d);
        m.put("adafactor", adafactor.toMap());
        m.put("came", came.toMap());
        return m;
    }
}
