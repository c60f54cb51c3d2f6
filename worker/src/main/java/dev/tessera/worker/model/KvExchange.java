package dev.tessera.worker.model;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * How attention's keys and values cross the sequence-parallel ranks. With sequence parallelism each rank holds
 * one contiguous segment of every sequence (DESIGN.md, the mesh), and its queries must also see the K/V of the
 * segments before it: a ring passes K/V blocks around the group and merges them by online softmax, Ulysses
 * trades sequence for head sharding by all-to-all ({@link AttentionCore} masks by absolute position for this).
 * Attention calls the exchange once in forward, after the q|k|v projection, and once in backward, after the
 * attention core; {@link #LOCAL} is a rank that holds whole sequences and exchanges nothing.
 */
public interface KvExchange {

    /** Whole sequences on this rank: nothing to exchange. */
    KvExchange LOCAL = new KvExchange() {
        @Override
        public void forward(INDArray qkv) {
        }

        @Override
        public void backward(INDArray dqkv) {
        }
    };

    /** qkv: [B*T, 3C], this rank's q | k | v projections (q and k not yet rotated). */
    void forward(INDArray qkv);

    /** dqkv: [B*T, 3C], their gradients; the parts that belong to other ranks' tokens go back to them. */
    void backward(INDArray dqkv);
}
