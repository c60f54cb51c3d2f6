package dev.tessera.comm.compress;

import org.agrona.DirectBuffer;

/**
 * Sees each encoded layer of a reduction: the tensor about to be encoded ({@code a = g + e}, which L-GreCo's
 * selection measures its candidates on) and what its encoding cost. Called on the reducing thread.
 */
public interface LayerObserver {

    LayerObserver NONE = new LayerObserver() {
    };

    /** Layer {@code layer}'s {@code a}, at {@code values[index, index + n)}: read it, do not keep it. */
    default void beforeEncode(int layer, DirectBuffer values, int index, int n) {
    }

    /** Layer {@code layer} was sent as {@code bytes} bytes with squared error {@code error} (NaN: not measured). */
    default void encoded(int layer, int bytes, double error) {
    }
}
