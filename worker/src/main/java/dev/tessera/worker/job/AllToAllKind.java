package dev.tessera.worker.job;

/** {@code moe.all_to_all}: how MoE tokens reach the ranks of an expert group (ALGORITHMS.md 7.4-7.5). */
public enum AllToAllKind {
    /** One exchange among all ranks of the expert group. */
    FLAT,
    /** Two hops, within each node and then across nodes (HetuMoE / Tutel 2DH); the same bytes arrive. */
    HIERARCHICAL
}
