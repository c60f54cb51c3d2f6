package dev.tessera.worker.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Where a flat buffer of a {@link ParameterStore} lives. Ordinary ND4J memory, or memory the data-parallel
 * group maps on every member (its collectives then read peers' gradients directly): the model does not care.
 */
@FunctionalInterface
public interface FlatMemory {

    /** ND4J's own allocation. */
    FlatMemory ND4J = (dtype, numel) -> Nd4j.zeros(dtype, numel);

    /** A zeroed contiguous 1-D array of {@code numel} elements. */
    INDArray allocate(DataType dtype, long numel);
}
