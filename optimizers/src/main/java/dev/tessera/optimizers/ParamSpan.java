package dev.tessera.optimizers;

/**
 * One parameter tensor as a slice {@code [offset, offset+numel)} of the flat parameter and gradient
 * buffers. Optimizers see the model only through these, so ZeRO shards are just sub-lists of spans.
 */
public record ParamSpan(String name, long offset, long numel, long[] shape) {

    /** Decoupled weight decay applies to matrices (linear weights, embeddings), not to norm gains. */
    public boolean decays() {
        return shape.length >= 2;
    }
}
