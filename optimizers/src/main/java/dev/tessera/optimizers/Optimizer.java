package dev.tessera.optimizers;

import java.util.List;
import java.util.Map;

/**
 * Updates the flat parameter buffer in place from the flat gradient buffer, over the {@link Shard} this rank
 * owns (the whole buffer on a single rank).
 */
public interface Optimizer {

    /**
     * One update. {@code step} is 1-based and counts optimizer steps; {@code gradScale} multiplies every
     * gradient first (global-norm clipping folds into it, so the gradients are read exactly once). Under ZeRO
     * every rank of the group calls it together: the factored optimizers reduce statistics across ranks.
     */
    void step(long step, double lr, double gradScale);

    /** Bytes of optimizer state this rank allocated (its shard plus replicated column statistics). */
    long stateBytes();

    /**
     * Named state tensors as this rank holds them, insertion-ordered, for checkpoints; loading assigns into
     * each slice's {@code data}, which is a view of the live state. Tensors this rank owns nothing of are left out.
     */
    Map<String, StateSlice> state();

    /**
     * The state as checkpoints write it, one map per file: {@link #state} for one optimizer; one map per part for
     * {@link OptimizerParts}, whose parts' flat state shares names (each is a run over the same flat buffer).
     */
    default List<Map<String, StateSlice>> stateParts() {
        return List.of(state());
    }
}
