package dev.tessera.worker.model;

/**
 * Where the model's parameters live between uses. The model is cut into units in buffer order (embedding,
 * each block, then the final norm with lm_head; see {@code Transformer.unitBounds}) and brackets every use
 * of a unit's parameters with {@link #acquire} and {@link #release} ({@link #releaseFrom} for a part of it).
 * Replicated parameters are always resident; ZeRO-3 gathers a unit's parameters before use and frees what it does
 * not own after.
 */
public interface ParameterSync {

    /** Every parameter is always in place: plain data parallelism and ZeRO stages 0-2. */
    ParameterSync RESIDENT = new ParameterSync() {
        @Override
        public void acquire(int unit, int next) {
        }

        @Override
        public void release(int unit) {
        }

        @Override
        public void releaseFrom(int unit, long fromElement, int next) {
        }

        @Override
        public void releaseAttention(int unit) {
        }

        @Override
        public void reacquireAttention(int unit, int next) {
        }

        @Override
        public void afterUpdate() {
        }
    };

    /**
     * Returns once the parameters of {@code unit} are in place, and may start fetching {@code next}, the unit the
     * model uses after this one (-1: none before the optimizer step changes them).
     */
    void acquire(int unit, int next);

    /** The parameters of {@code unit} are not needed until the next {@link #acquire}. */
    void release(int unit);

    /**
     * In backward: {@code unit}'s parameters from flat element {@code fromElement} on are not read again this pass
     * (a block's down projection, or its FFN half, once through), so they may go, and fetching {@code next}, the
     * unit whose backward follows (-1: none), may start: at least what its backward reads first, the rest may
     * wait for its {@link #acquire}. Backward fetches here rather than in {@link #acquire}, so that the fetched
     * parameters take the place of those that went.
     */
    void releaseFrom(int unit, long fromElement, int next);

    /**
     * In backward, once a block's recomputed forward has run its attention half: those parameters are not read
     * again until the block's attention backward, so they may go meanwhile ({@link #reacquireAttention}).
     */
    void releaseAttention(int unit);

    /**
     * After {@link #releaseAttention}, once the block's FFN half is through ({@link #releaseFrom} has let it go):
     * returns once the attention half is in place again, and may start fetching {@code next} (-1: none) as
     * {@link #releaseFrom} would have.
     */
    void reacquireAttention(int unit, int next);

    /** The optimizer has updated this rank's shard: bring the replicas' parameters up to date. */
    void afterUpdate();
}
