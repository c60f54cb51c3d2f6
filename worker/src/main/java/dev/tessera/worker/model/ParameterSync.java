package dev.tessera.worker.model;

/**
 * Where the model's parameters live between uses. The model is cut into units in buffer order (embedding,
 * each block, then the final norm with lm_head; see {@code Transformer.unitBounds}) and brackets every use
 * of a unit's parameters with {@link #acquire} and {@link #release}. Replicated parameters are always
 * resident; ZeRO-3 gathers a unit's parameters before use and frees what it does not own after.
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

    /** The optimizer has updated this rank's shard: bring the replicas' parameters up to date. */
    void afterUpdate();
}
