package dev.tessera.comm.compress;

import java.nio.ByteBuffer;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * L-GreCo's candidates for a family of {@link Encoder}s (Top-K densities, QSGD bits), the same list for every layer:
 * a candidate's size is the bytes {@link Encoder#encode} writes, and its error the squared error
 * {@link Encoder#encodeKeepingResidual} leaves, so the choice is charged exactly what training sends and keeps.
 */
public final class EncoderCandidates implements LayerCandidates {

    private final Encoder[] encoders;
    private final int defaultIndex;
    private final int layers;
    private UnsafeBuffer scratchEncoded = new UnsafeBuffer(0, 0);
    private UnsafeBuffer scratchResidual = new UnsafeBuffer(0, 0);

    /** {@code encoders} for each of {@code layers} layers; {@code encoders[defaultIndex]} is the uniform one. */
    public EncoderCandidates(Encoder[] encoders, int defaultIndex, int layers) {
        if (defaultIndex < 0 || defaultIndex >= encoders.length) {
            throw new IllegalArgumentException("default candidate " + defaultIndex + " of " + encoders.length);
        }
        this.encoders = encoders.clone();
        this.defaultIndex = defaultIndex;
        this.layers = layers;
    }

    /** Candidate {@code c}'s encoder. */
    public Encoder encoder(int c) {
        return encoders[c];
    }

    @Override
    public int layers() {
        return layers;
    }

    @Override
    public int count(int layer) {
        return encoders.length;
    }

    @Override
    public int defaultIndex(int layer) {
        return defaultIndex;
    }

    @Override
    public void measure(int layer, DirectBuffer values, int index, int n, long[] sizeBits, double[] errors) {
        int most = 0;
        for (Encoder c : encoders) {
            most = Math.max(most, c.maxEncodedBytes(n));
        }
        if (scratchEncoded.capacity() < most) {
            scratchEncoded = new UnsafeBuffer(ByteBuffer.allocateDirect(most));
        }
        if (scratchResidual.capacity() < 4 * n) {
            scratchResidual = new UnsafeBuffer(ByteBuffer.allocateDirect(4 * n));
        }
        for (int c = 0; c < encoders.length; c++) {
            // The seed only moves a stochastic encoder's draws; the error measured is that encoding's.
            int bytes = encoders[c].encodeKeepingResidual(values, index, n, scratchEncoded, 0, layer, scratchResidual,
                    0);
            sizeBits[c] = 8L * bytes;
            errors[c] = ErrorFeedback.squaredNorm(scratchResidual, 0, n);
        }
    }
}
