package dev.tessera.optimizers;

import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Updates the flat parameter buffer in place from the flat gradient buffer. */
public interface Optimizer {

    /**
     * One update. {@code step} is 1-based and counts optimizer steps; {@code gradScale} multiplies every
     * gradient first (global-norm clipping folds into it, so the gradients are read exactly once).
     */
    void step(long step, double lr, double gradScale);

    /** Bytes of optimizer state held by this process. */
    long stateBytes();

    /** Named state tensors, for checkpoints; loading assigns into the same arrays. */
    Map<String, INDArray> state();
}
