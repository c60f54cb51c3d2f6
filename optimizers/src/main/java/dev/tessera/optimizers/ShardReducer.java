package dev.tessera.optimizers;

/**
 * Sums small packed vectors over the ranks of one ZeRO group (one all-reduce per call). Every rank calls it
 * the same number of times with the same length: the factored optimizers pack every matrix of the model into
 * fixed slots (zeros where a rank owns nothing), so the calls line up across ranks (ALGORITHMS.md §3.5).
 */
@FunctionalInterface
public interface ShardReducer {

    /** One rank: its values already are the sum. */
    ShardReducer LOCAL = (values, length) -> { };

    /** Replaces {@code values[0, length)} with their elementwise sum over the group's ranks. */
    void sumInPlace(double[] values, int length);
}
