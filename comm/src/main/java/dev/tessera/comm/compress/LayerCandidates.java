package dev.tessera.comm.compress;

import org.agrona.DirectBuffer;

/**
 * One compressor family's L-GreCo candidates (ALGORITHMS.md 4), per layer: how many a layer has, which of them is
 * the uniform default that sets the error budget, and what each costs on the layer's {@code a = g + e}. The
 * selection and the solver see only these numbers, so a family whose setting is not an {@link Encoder} (PowerSGD's
 * rank, whose grid depends on the matrix's shape) is chosen by the same code as Top-K's or QSGD's. Layers are
 * numbered over the whole job, as {@link LGreCoSelection} numbers them. Runs on the reducing thread.
 */
public interface LayerCandidates {

    /** The number of layers the family chooses for. */
    int layers();

    /** Layer {@code layer}'s number of candidates, >= 1; they are indices {@code [0, count)}. */
    int count(int layer);

    /** The index of layer {@code layer}'s uniform setting, which sets the error budget. */
    int defaultIndex(int layer);

    /**
     * Measures every candidate of layer {@code layer} on its {@code a = values[index, index + n)}, as training
     * would send it: {@code sizeBits[c]} the compressed size in bits, {@code errors[c]} the squared L2 error. Reads
     * {@code values}, does not change or keep it.
     */
    void measure(int layer, DirectBuffer values, int index, int n, long[] sizeBits, double[] errors);
}
