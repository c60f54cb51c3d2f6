package dev.tessera.worker.model;

/**
 * Which blocks recompute their activations in backward instead of keeping them from forward (activation
 * checkpointing): block {@code l} does when {@code every > 0} and {@code l % every == 0}. Such blocks keep only
 * their input, and share one set of activation buffers ({@link Activations#shared()}). Forward is deterministic,
 * so the recomputed activations, and every gradient, are the same bits as kept ones.
 *
 * @param every 0: none; 1: every block; k: blocks 0, k, 2k, ...
 */
public record RecomputePolicy(int every) {

    public static final RecomputePolicy NONE = new RecomputePolicy(0);
    public static final RecomputePolicy EVERY_BLOCK = new RecomputePolicy(1);

    public RecomputePolicy {
        if (every < 0) {
            throw new IllegalArgumentException("every must be >= 0, got " + every);
        }
    }

    public boolean recomputes(int layer) {
        return every > 0 && layer % every == 0;
    }
}
