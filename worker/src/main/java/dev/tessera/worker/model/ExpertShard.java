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

    /**
     * Whether {@code name} ({@code model.layers.{l}.block_sparse_moe.experts.{e}.*}) is a tensor of an MoE expert,
     * which expert parallelism partitions over the ranks; every other tensor is on every rank.
     */
    public static boolean isExpertTensor(String name) {
        return name.contains(".block_sparse_moe.experts.");
    }

    /** Whether a rank holding these experts holds only some of {@code nExperts}: expert parallelism. */
    public boolean isPartOf(int nExperts) {
        return count < nExperts;
    }

    public boolean holds(int expert) {
        return expert >= first && expert < end();
    }
}
