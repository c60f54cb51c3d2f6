package dev.tessera.optimizers;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One optimizer state tensor as held by this rank: elements {@code [from, from + data.length())} of the C-order
 * flattening of the full, unsharded state tensor of shape {@code fullShape}. Replicated tensors (column
 * statistics) have {@code from = 0} and the full length. {@code data} is a 1-D contiguous view (no copy) of
 * the optimizer's own state, so a checkpoint load that assigns into it sets the live state.
 */
public record StateSlice(INDArray data, long[] fullShape, long from) {
}
