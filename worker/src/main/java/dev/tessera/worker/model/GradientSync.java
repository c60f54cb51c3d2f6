package dev.tessera.worker.model;

import dev.tessera.optimizers.GradNorm;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Reduces gradients across replicas while backward is still running. Backward walks the layers last to first
 * and calls {@link #ready} each time the gradients from an element offset to the end of the flat gradient
 * buffer are final; {@link #finish} waits until every reduction is done.
 */
public interface GradientSync {

    /** A single replica: nothing to reduce. */
    GradientSync NONE = new GradientSync() {
        @Override
        public void ready(long fromElement) {
        }

        @Override
        public void finish() {
        }
    };

    /** Gradients {@code [fromElement, end)} of the flat buffer are final for this step. */
    void ready(long fromElement);

    /** Starts whatever has not started and waits for all of it. */
    void finish();

    /** Clears the gradient buffer before backward accumulates into it. */
    default void zero(ParameterStore params) {
        params.zeroGrads();
    }

    /** The squared L2 norm of the global gradient, after {@link #finish}. */
    default double sumOfSquares(INDArray grads) {
        return GradNorm.sumOfSquares(grads);
    }
}
