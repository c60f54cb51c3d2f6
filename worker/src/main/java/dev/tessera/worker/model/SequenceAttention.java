package dev.tessera.worker.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Causal attention of this rank's tokens, head-major, with q and k already rotated at their global positions. One
 * process attends over whole sequences ({@link AttentionCore}); under sequence parallelism (ALGORITHMS.md 8) each
 * rank holds some positions of every sequence ({@link SequenceShard}) and the scheme brings it the keys and values
 * of the others: all-gather of K|V, a ring of K|V blocks, or Ulysses' all-to-all over heads. Every scheme gives the
 * attention of the whole sequence, restricted to this rank's queries, and in backward returns to each rank the
 * gradients of its own q, k and v, summed over every rank's queries.
 */
public interface SequenceAttention {

    /** q, k, v: [B*H, Tl, D] this rank's tokens (Tl of each sequence) -> y: [B*H, Tl, D] (overwritten). */
    void forward(INDArray q, INDArray k, INDArray v, INDArray y);

    /**
     * dy: [B*H, Tl, D] -> dq, dk, dv: [B*H, Tl, D] (overwritten). q, k, v are the last forward's inputs, unchanged.
     */
    void backward(INDArray q, INDArray k, INDArray v, INDArray dy, INDArray dq, INDArray dk, INDArray dv);

    /** Nanoseconds spent so far waiting for the other ranks (in collectives), in forward and backward. */
    default long waitedNanos() {
        return 0;
    }

    /** Makes one layer's attention, its buffers from that layer's activations. */
    interface Factory {
        /**
         * @param batch         sequences on this rank
         * @param heads         attention heads
         * @param seq           tokens of each sequence on this rank
         * @param scoresScratch a float64 [B*H, Tl, Tl] buffer the layers share, or null
         */
        SequenceAttention create(DataType dt, int batch, int heads, int headDim, int seq, INDArray scoresScratch,
                                 Activations activations);
    }
}
