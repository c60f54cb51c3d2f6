package dev.tessera.comm.compress;

import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Sums one gradient bucket over a group by gathering every member's encoded layers (Top-K's (index, value) pairs,
 * QSGD's quantised buckets, FedZip's streams). Each member encodes {@code a = g + e} per layer and keeps
 * {@code e = a - Dec(Enc(a))}; without error feedback (FedZip as its paper has it) {@code a = g} and nothing is
 * kept. The members exchange their payload lengths, then the payloads (one uneven all-gather), and every member
 * decodes all of them into the bucket in rank order, so the sum is the same bits everywhere. A layer without an
 * encoder (small or 1-D) travels as raw float32.
 *
 * <p>A member's payload is, per layer in bucket order: a raw layer's {@code 4n} bytes, or an encoded layer's
 * int32 length and its bytes. The buffers are allocated once, at the largest size the encoders can produce.
 */
public final class GatheredReduction implements EncodedReduction {

    private final List<BucketLayer> layers;
    private final Encoder[] encoders;
    private final int[] residualIndex;   // per layer, its first element in the residual; -1 for raw layers
    private final UnsafeBuffer residual;
    private UnsafeBuffer payload;
    private UnsafeBuffer gathered;
    private final UnsafeBuffer span = new UnsafeBuffer(0, 0);
    private final UnsafeBuffer myLength = new UnsafeBuffer(ByteBuffer.allocateDirect(4));
    private final UnsafeBuffer lengths;
    private final long[] bounds;
    private final int members;
    private final long seed;
    private final boolean errorFeedback;
    private final LayerObserver observer;

    /**
     * {@code encoders[l]} encodes layer {@code l}, null sends it raw; every member passes the same. The residuals
     * of the encoded layers start at zero.
     */
    public GatheredReduction(List<BucketLayer> layers, Encoder[] encoders, int members, long seed,
                             boolean errorFeedback, LayerObserver observer) {
        if (encoders.length != layers.size()) {
            throw new IllegalArgumentException(encoders.length + " encoders for " + layers.size() + " layers");
        }
        this.layers = List.copyOf(layers);
        this.encoders = encoders.clone();
        this.members = members;
        this.seed = seed;
        this.errorFeedback = errorFeedback;
        this.observer = observer;
        this.residualIndex = new int[layers.size()];
        long residualElements = 0;
        for (int l = 0; l < layers.size(); l++) {
            residualIndex[l] = encoders[l] == null || !errorFeedback ? -1 : Math.toIntExact(residualElements);
            residualElements += residualIndex[l] < 0 ? 0 : layers.get(l).n();
        }
        this.residual = new UnsafeBuffer(ByteBuffer.allocateDirect(Math.toIntExact(4 * residualElements)));
        this.payload = new UnsafeBuffer(0, 0);
        this.gathered = new UnsafeBuffer(0, 0);
        sizeBuffers();
        this.lengths = new UnsafeBuffer(ByteBuffer.allocateDirect(4 * members));
        this.bounds = new long[members + 1];
    }

    @Override
    public void reduce(ProcessGroup group, MutableDirectBuffer bucket, long round) {
        int length = encode(bucket, round, group.rank());
        myLength.putInt(0, length);
        group.allGather(myLength, lengths, DType.INT32);
        for (int m = 0; m < members; m++) {
            bounds[m + 1] = bounds[m] + lengths.getInt(4 * m);
        }
        gathered.putBytes((int) bounds[group.rank()], payload, 0, length);
        span.wrap(gathered, 0, (int) bounds[members]);
        group.allGatherInPlace(span, bounds, DType.BYTE);
        bucket.setMemory(0, bucket.capacity(), (byte) 0);
        for (int m = 0; m < members; m++) {
            decodeAdd(span, (int) bounds[m], (int) bounds[m + 1], bucket);
        }
    }

    /** Writes this member's payload and keeps each encoded layer's residual; returns the payload's length. */
    private int encode(MutableDirectBuffer bucket, long round, int rank) {
        int at = 0;
        for (int l = 0; l < layers.size(); l++) {
            BucketLayer layer = layers.get(l);
            int n = layer.n();
            Encoder encoder = encoders[l];
            if (encoder == null) {
                payload.putBytes(at, bucket, 4 * layer.index(), 4 * n);
                at += 4 * n;
                continue;
            }
            if (errorFeedback) {
                ErrorFeedback.addResidual(bucket, layer.index(), residual, residualIndex[l], n);
            }
            observer.beforeEncode(l, bucket, layer.index(), n);
            long layerSeed = Seeds.of(seed, round, l, rank);
            int written;
            double error;
            if (errorFeedback) {
                written = encoder.encodeKeepingResidual(bucket, layer.index(), n, payload, at + 4, layerSeed, residual,
                        residualIndex[l]);
                error = ErrorFeedback.squaredNorm(residual, residualIndex[l], n);
            } else {
                written = encoder.encode(bucket, layer.index(), n, payload, at + 4, layerSeed);
                error = Double.NaN;
            }
            payload.putInt(at, written);
            observer.encoded(l, written, error);
            at += 4 + written;
        }
        return at;
    }

    private void decodeAdd(UnsafeBuffer from, int start, int end, MutableDirectBuffer bucket) {
        int at = start;
        for (int l = 0; l < layers.size(); l++) {
            BucketLayer layer = layers.get(l);
            int n = layer.n();
            if (encoders[l] == null) {
                requireWithin(at + 4L * n, end, layer);
                for (int i = 0; i < n; i++) {
                    int o = 4 * (layer.index() + i);
                    bucket.putFloat(o, bucket.getFloat(o) + from.getFloat(at + 4 * i));
                }
                at += 4 * n;
                continue;
            }
            requireWithin(at + 4L, end, layer);
            int length = from.getInt(at);
            requireWithin(at + 4L + length, end, layer);
            encoders[l].decodeAdd(from, at + 4, length, 1f, bucket, layer.index(), n);
            at += 4 + length;
        }
        if (at != end) {
            throw new IllegalArgumentException("a gathered payload holds " + (end - at) + " bytes past its last layer");
        }
    }

    private static void requireWithin(long position, int end, BucketLayer layer) {
        if (position > end) {
            throw new IllegalArgumentException("a gathered payload ends inside layer '" + layer.name() + "'");
        }
    }

    /** Switches layer {@code l} to {@code encoder} (of the same kind: raw stays raw) from the next reduction on. */
    @Override
    public void use(int l, Encoder encoder) {
        if ((encoder == null) != (encoders[l] == null)) {
            throw new IllegalArgumentException("layer '" + layers.get(l).name() + "' cannot switch between raw and"
                    + " encoded");
        }
        encoders[l] = encoder;
        sizeBuffers();
    }

    /** Grows the payload buffers to the most the current encoders can write; never shrinks them. */
    private void sizeBuffers() {
        long payloadBytes = 0;
        for (int l = 0; l < layers.size(); l++) {
            int n = layers.get(l).n();
            payloadBytes += encoders[l] == null ? 4L * n : 4L + encoders[l].maxEncodedBytes(n);
        }
        if (payloadBytes > payload.capacity()) {
            payload = new UnsafeBuffer(ByteBuffer.allocateDirect(Math.toIntExact(payloadBytes)));
            gathered = new UnsafeBuffer(ByteBuffer.allocateDirect(Math.toIntExact(payloadBytes * members)));
        }
    }

    @Override
    public Map<String, MutableDirectBuffer> state() {
        return Map.of("residual", residual);
    }
}
