package dev.tessera.worker.model;

/**
 * The experts of every MoE layer that this rank holds: {@code count} of them from global index {@code first}.
 * Expert parallelism gives each rank of an expert group {@code n_experts / ep} consecutive experts; alone, a rank
 * holds them all. Tensors keep their global names ({@code experts.<e>}), so a checkpoint is the same whoever
 * wrote it.
 */
public record ExpertShard(int first, int count) {

    public ExpertShard {
        if (first < 0 || count < 0) {
            throw new IllegalArgumentException("experts [" + first + ", " + (first + count) + ") is not a range");
        }
    }

    /** Every one of {@code nExperts} experts (0 for a dense model). */
    public static ExpertShard all(int nExperts) {
        return new ExpertShard(0, nExperts);
    }

    public int end() {
        return first + count;
    }

    public boolean holds(int expert) {
        return expert >= first && expert < end();
    }
}
