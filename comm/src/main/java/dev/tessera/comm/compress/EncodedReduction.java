package dev.tessera.comm.compress;

/**
 * A {@link BucketReduction} whose layers are encoded by per-layer {@link Encoder}s that can be swapped between
 * rounds, which is what L-GreCo's selection does to every rank at the same step boundary.
 */
public interface EncodedReduction extends BucketReduction {

    /**
     * Switches layer {@code layer} to {@code encoder} from the next reduction on. A raw layer stays raw and an
     * encoded one stays encoded: the residuals are laid out for the encoded layers only.
     */
    void use(int layer, Encoder encoder);
}
