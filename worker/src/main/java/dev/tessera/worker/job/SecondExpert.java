package dev.tessera.worker.job;

/** {@code model.gshard_second_expert}: how GShard picks and keeps each token's second expert (ALGORITHMS.md 7.1). */
public enum SecondExpert {
    /** The paper's: the second most probable, kept with probability min(1, 2 g2). */
    RANDOM,
    /** Gumbel-max sampled among the experts but the first, kept when it has a slot (fairseq, DeepSpeed). */
    SAMPLING,
    /** The second most probable, kept when it has a slot. */
    ALL
}
