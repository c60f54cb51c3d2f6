package dev.tessera.worker.job;

/** {@code model.gate}: how MoE layers choose experts (ALGORITHMS.md section 7). */
public enum GateKind {
    /** Mixtral's dropless top-k, weights renormalised over the k. */
    TOPK,
    /** Switch Transformer's top-1 with a capacity. */
    SWITCH,
    /** GShard's top-2 with a capacity and random routing of the second expert. */
    GSHARD
}
