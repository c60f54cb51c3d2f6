package dev.tessera.worker.model;

/**
 * What of the model this rank computes, decided by the mesh before the model is built: the experts of each MoE layer
 * it holds (expert parallelism) and the tokens of each sequence it holds, with how its attention reaches the rest
 * (sequence parallelism). A single process holds everything: {@link #whole}.
 */
public record ModelShard(ExpertShard experts, SequenceShard sequence) {

    /** Every expert of {@code cfg} and whole sequences of {@code seq} tokens. */
    public static ModelShard whole(ModelConfig cfg, int seq) {
        return new ModelShard(ExpertShard.all(cfg.nExperts()), SequenceShard.whole(seq));
    }
}
