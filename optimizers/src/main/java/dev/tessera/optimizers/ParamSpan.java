package dev.tessera.optimizers;

/**
 * One parameter tensor as a slice {@code [offset, offset+numel)} of the flat parameter and gradient
 * buffers. Optimizers see the model only through these, so ZeRO shards are just sub-lists of spans.
 */
public record ParamSpan(String name, long offset, long numel, long[] shape) {

    /**
     * Decoupled weight decay applies to matrices (linear weights, embeddings); to norm gains and other tensors
     * of ndim < 2 only with {@code decay1d}, as HF Adafactor and the official CAME do (they decay everything).
     */
    public boolean decays(boolean decay1d) {
        return decay1d || shape.length >= 2;
    }
}
