package dev.tessera.optimizers;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The element range {@code [from, to)} of the flat parameter and gradient buffers one rank owns under ZeRO
 * (ALGORITHMS.md §3): the rank updates only these parameters, reads only these gradients and keeps optimizer
 * state only for them. {@link #whole} is the single-rank case, which runs the same code.
 */
public record Shard(long from, long to) {

    public Shard {
        if (from < 0 || to < from) {
            throw new IllegalArgumentException("shard [" + from + ", " + to + ") is not a range of a flat buffer");
        }
    }

    /** {@code [0, numel)}: everything, as a single rank owns it. */
    public static Shard whole(long numel) {
        return new Shard(0, numel);
    }

    public long length() {
        return to - from;
    }

    /** Every optimizer's constructor check: same-layout params and grads, and this shard inside them. */
    void checkFits(INDArray params, INDArray grads) {
        if (params.length() != grads.length() || params.dataType() != grads.dataType()) {
            throw new IllegalArgumentException("params and grads differ in length or dtype");
        }
        if (to > params.length()) {
            throw new IllegalArgumentException("shard " + this + " exceeds the " + params.length() + " parameters");
        }
    }
}
