package dev.tessera.worker.job;

import dev.tessera.optimizers.AdamWConfig;
import dev.tessera.optimizers.OptimizerSpec;

/**
 * {@code optimizer:} the optimizer and its LR schedule (linear warmup, then cosine decay to {@code min_lr}).
 * {@code weight_decay}, {@code beta1}, {@code beta2} and {@code eps} are AdamW's; Adafactor and CAME read theirs
 * from their own subsections, whose defaults are those of ALGORITHMS.md §1-2. {@code decay_1d} holds for all three:
 * false decays matrices only, true every parameter (norm gains too), as HF Adafactor and the official CAME do.
 */
public record OptimizerSection(OptimizerKind name, double lr, double minLr, int warmupSteps, double weightDecay,
                               double beta1, double beta2, double eps, double gradClip,
                               @Key("decay_1d") boolean decay1d, AdafactorSection adafactor, CameSection came) {

    public static OptimizerSection defaults() {
        return new OptimizerSection(OptimizerKind.ADAMW, 4.0e-3, 4.0e-4, 100, 0.1, 0.9, 0.95, 1.0e-8, 1.0, false,
                AdafactorSection.defaults(), CameSection.defaults());
    }

    /** What a replica builds its optimizer from. */
    public OptimizerSpec toSpec() {
        return new OptimizerSpec(SpecFields.yamlName(name), new AdamWConfig(beta1, beta2, eps, weightDecay, decay1d),
                adafactor.toConfig(decay1d), came.toConfig(decay1d));
    }
}
