package dev.tessera.comm.compress;

import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Sums one gradient bucket over a group as a reduce-scatter and an all-gather of encoded chunks (QSGD/CGX,
 * ALGORITHMS.md section 4). {@link GatheredReduction} sends every member's whole encoding to every member, so each
 * member receives {@code N - 1} encodings of the bucket; here each member receives {@code N - 1} encodings of one
 * chunk and then {@code N - 1} encoded summed chunks, about {@code 2 / N} of the bucket's encoding in all whatever
 * {@code N}, at the price of a second quantisation of the sum.
 *
 * <p>Every layer of {@code n} elements is cut into {@code N} contiguous chunks, and member {@code m} owns chunk
 * {@code m} of every layer. Where the encoder is a {@link Qsgd} the cuts fall on its bucket boundaries, so a chunk's
 * quantisation buckets are the whole layer's; a chunk may be empty (a layer under {@code N} buckets). The cuts are
 * made once, from the encoders given to the constructor.
 * <ol>
 *   <li>Reduce-scatter. Each member forms {@code a = g + e} per encoded layer, encodes each chunk of {@code a} on its
 *   own and keeps {@code e = a - Dec(Enc(a))}; one all-to-all sends chunk {@code m} of every layer to member
 *   {@code m}, which decodes the {@code N} encodings of its chunk in rank order into a float32 sum.</li>
 *   <li>All-gather. The owner forms {@code s + o} with its own residual {@code o} ({@code owner_residual}, kept
 *   between rounds for its chunks only), encodes it once more and keeps {@code o}; an uneven all-gather hands every
 *   member every owner's encoding, which each decodes into the zeroed bucket, so every member holds the same
 *   bits.</li>
 * </ol>
 * A layer without an encoder (small or 1-D) travels the same way as raw float32, and its sum is exact.
 *
 * <p>Wire layout. Member {@code r}'s block for member {@code m} in the all-to-all, and owner {@code m}'s block in
 * the all-gather, is, per layer in bucket order, chunk {@code m}'s {@code 4 x length} raw bytes or its encoding
 * (nothing for an empty chunk), back to back without headers. Where every encoder has a {@link
 * Encoder#fixedLength fixed length} (QSGD) the receivers know each length from the chunk's size; otherwise each
 * stage starts with an exchange of the int32 byte lengths, one per layer and chunk (an all-to-all before the
 * reduce-scatter, an all-gather before the all-gather). The buffers are allocated once, at the largest size the
 * encoders can produce.
 *
 * <p>Checkpoints keep {@code residual} (the encoded layers' first-stage residuals, one float32 per element) and
 * {@code owner_residual} (this member's owned chunks of the encoded layers, in layer order, sized for the largest
 * owner's chunks so that every member's state has one shape).
 */
public final class ScatteredReduction implements EncodedReduction {

    private final List<BucketLayer> layers;
    private final Encoder[] encoders;
    private final int members;
    private final long seed;
    private final LayerObserver observer;
    private final int[][] cut;            // per layer, N + 1 element offsets: chunk m is [cut[m], cut[m+1])
    private final int[] residualIndex;    // per layer, its first element in the residual; -1 for raw layers
    private final int[][] ownerIndex;     // per layer and owner, the chunk's first element in owner_residual; -1 raw
    private final int[][] ownedIndex;     // per layer and owner, the chunk's first element in the owned sum
    private final UnsafeBuffer residual;
    private final UnsafeBuffer ownerResidual;
    private final UnsafeBuffer owned;     // float32 sum of this member's chunks, every layer's
    private final int[] blockStart;       // per destination, where this member's block to it is written
    private final int[] cursor;
    private final long[] inSplits;
    private final long[] outSplits;
    private final long[] bounds;
    private final UnsafeBuffer sendLengths;   // per destination and layer, int32 bytes of this member's chunk
    private final UnsafeBuffer recvLengths;   // per source and layer, int32 bytes of its encoding of my chunk
    private final UnsafeBuffer myLengths;     // per layer, int32 bytes of my re-encoded chunk
    private final UnsafeBuffer allLengths;    // per owner and layer
    private final UnsafeBuffer span = new UnsafeBuffer(0, 0);
    private UnsafeBuffer send;
    private UnsafeBuffer receive;
    private UnsafeBuffer gathered;
    private boolean fixed;

    /**
     * {@code encoders[l]} encodes layer {@code l}, null sends it raw; every member passes the same. Error feedback
     * is always on; both residuals start at zero.
     */
    public ScatteredReduction(List<BucketLayer> layers, Encoder[] encoders, int members, long seed,
                              LayerObserver observer) {
        if (encoders.length != layers.size()) {
            throw new IllegalArgumentException(encoders.length + " encoders for " + layers.size() + " layers");
        }
        if (members < 1) {
            throw new IllegalArgumentException("a reduction over " + members + " members");
        }
        int count = layers.size();
        this.layers = List.copyOf(layers);
        this.encoders = encoders.clone();
        this.members = members;
        this.seed = seed;
        this.observer = observer;
        this.cut = new int[count][];
        this.residualIndex = new int[count];
        this.ownerIndex = new int[count][members];
        this.ownedIndex = new int[count][members];
        long residualElements = 0;
        long[] ownerElements = new long[members];
        long[] ownedElements = new long[members];
        for (int l = 0; l < count; l++) {
            int n = layers.get(l).n();
            cut[l] = cuts(n, encoders[l] instanceof Qsgd q ? q.bucket() : 1, members);
            residualIndex[l] = encoders[l] == null ? -1 : Math.toIntExact(residualElements);
            residualElements += encoders[l] == null ? 0 : n;
            for (int m = 0; m < members; m++) {
                int length = cut[l][m + 1] - cut[l][m];
                ownerIndex[l][m] = encoders[l] == null ? -1 : Math.toIntExact(ownerElements[m]);
                ownerElements[m] += encoders[l] == null ? 0 : length;
                ownedIndex[l][m] = Math.toIntExact(ownedElements[m]);
                ownedElements[m] += length;
            }
        }
        this.residual = floats(residualElements);
        this.ownerResidual = floats(max(ownerElements));
        this.owned = floats(max(ownedElements));
        this.blockStart = new int[members + 1];
        this.cursor = new int[members];
        this.inSplits = new long[members];
        this.outSplits = new long[members];
        this.bounds = new long[members + 1];
        this.sendLengths = new UnsafeBuffer(ByteBuffer.allocateDirect(4 * members * count));
        this.recvLengths = new UnsafeBuffer(ByteBuffer.allocateDirect(4 * members * count));
        this.myLengths = new UnsafeBuffer(ByteBuffer.allocateDirect(4 * count));
        this.allLengths = new UnsafeBuffer(ByteBuffer.allocateDirect(4 * members * count));
        this.send = new UnsafeBuffer(0, 0);
        this.receive = new UnsafeBuffer(0, 0);
        this.gathered = new UnsafeBuffer(0, 0);
        sizeBuffers();
    }

    /**
     * {@code N + 1} cuts of {@code n} elements into {@code N} contiguous chunks on multiples of {@code align}: the
     * {@code ceil(n / align)} aligned units are shared out as evenly as whole units allow, the last unit maybe
     * partial. Package-private for the test.
     */
    static int[] cuts(int n, int align, int members) {
        long units = (n + (long) align - 1) / align;
        int[] cuts = new int[members + 1];
        for (int m = 0; m <= members; m++) {
            cuts[m] = (int) Math.min(n, units * m / members * align);
        }
        return cuts;
    }

    @Override
    public void reduce(ProcessGroup group, MutableDirectBuffer bucket, long round) {
        if (group.size() != members) {
            throw new IllegalArgumentException("a reduction planned for " + members + " members run on a group of "
                    + group.size());
        }
        int rank = group.rank();
        int count = layers.size();

        // Reduce-scatter.
        encodeChunks(bucket, round, rank);
        for (int m = 0; m < members; m++) {
            inSplits[m] = cursor[m] - blockStart[m];
        }
        compactBlocks();
        if (fixed) {
            for (int i = 0; i < members; i++) {
                for (int l = 0; l < count; l++) {
                    recvLengths.putInt(4 * (i * count + l), fixedBytes(l, rank));
                }
            }
        } else {
            group.allToAll(sendLengths, recvLengths, DType.INT32);
        }
        for (int i = 0; i < members; i++) {
            long total = 0;
            for (int l = 0; l < count; l++) {
                total += recvLengths.getInt(4 * (i * count + l));
            }
            outSplits[i] = total;
        }
        group.allToAll(send, inSplits, receive, outSplits, DType.BYTE);
        sumOwnedChunks(rank);

        // All-gather.
        int length = encodeOwnedChunks(round, rank);
        if (fixed) {
            for (int m = 0; m < members; m++) {
                for (int l = 0; l < count; l++) {
                    allLengths.putInt(4 * (m * count + l), fixedBytes(l, m));
                }
            }
        } else {
            group.allGather(myLengths, allLengths, DType.INT32);
        }
        for (int m = 0; m < members; m++) {
            long total = 0;
            for (int l = 0; l < count; l++) {
                total += allLengths.getInt(4 * (m * count + l));
            }
            bounds[m + 1] = bounds[m] + total;
        }
        if (bounds[rank + 1] - bounds[rank] != length) {
            throw new IllegalStateException("owner " + rank + " wrote " + length + " bytes, its peers expect "
                    + (bounds[rank + 1] - bounds[rank]));
        }
        // The send buffer is free again once the all-to-all is done; the encodings were staged in it because this
        // member's place in the gathered buffer is known only from the lengths.
        gathered.putBytes((int) bounds[rank], send, 0, length);
        span.wrap(gathered, 0, (int) bounds[members]);
        group.allGatherInPlace(span, bounds, DType.BYTE);
        bucket.setMemory(0, bucket.capacity(), (byte) 0);
        for (int m = 0; m < members; m++) {
            decodeOwner(m, bucket);
        }
    }

    /**
     * Writes this member's block for each destination at {@link #blockStart} (its end in {@link #cursor}) and the
     * chunks' lengths, and keeps each encoded layer's residual.
     */
    private void encodeChunks(MutableDirectBuffer bucket, long round, int rank) {
        int count = layers.size();
        System.arraycopy(blockStart, 0, cursor, 0, members);
        for (int l = 0; l < count; l++) {
            BucketLayer layer = layers.get(l);
            int n = layer.n();
            Encoder encoder = encoders[l];
            if (encoder == null) {
                for (int m = 0; m < members; m++) {
                    int bytes = 4 * (cut[l][m + 1] - cut[l][m]);
                    send.putBytes(cursor[m], bucket, 4 * (layer.index() + cut[l][m]), bytes);
                    sendLengths.putInt(4 * (m * count + l), bytes);
                    cursor[m] += bytes;
                }
                continue;
            }
            ErrorFeedback.addResidual(bucket, layer.index(), residual, residualIndex[l], n);
            // L-GreCo's candidates are measured on the whole layer, as they would encode it.
            observer.beforeEncode(l, bucket, layer.index(), n);
            long layerSeed = Seeds.of(seed, round, l, rank);
            int layerBytes = 0;
            double error = 0;
            for (int m = 0; m < members; m++) {
                int start = cut[l][m];
                int length = cut[l][m + 1] - start;
                int written = 0;
                if (length > 0) {
                    written = encoder.encodeKeepingResidual(bucket, layer.index() + start, length, send, cursor[m],
                            Seeds.ofChunk(layerSeed, 0, m), residual, residualIndex[l] + start);
                    error += ErrorFeedback.squaredNorm(residual, residualIndex[l] + start, length);
                }
                sendLengths.putInt(4 * (m * count + l), written);
                cursor[m] += written;
                layerBytes += written;
            }
            observer.encoded(l, layerBytes, error);
        }
    }

    /**
     * Moves the blocks down to follow each other, as the all-to-all's splits require. Only variable-length
     * encodings leave gaps; with fixed lengths every block fills its room and nothing moves.
     */
    private void compactBlocks() {
        int to = 0;
        for (int m = 0; m < members; m++) {
            int from = blockStart[m];
            int left = (int) inSplits[m];
            // Pieces no longer than the gap never overlap, whatever putBytes does with overlapping ranges.
            while (left > 0 && from != to) {
                int piece = Math.min(left, from - to);
                send.putBytes(to, send, from, piece);
                to += piece;
                from += piece;
                left -= piece;
            }
            to += left;
        }
    }

    /** Decodes the members' encodings of this member's chunks, in rank order, into {@link #owned}. */
    private void sumOwnedChunks(int rank) {
        int count = layers.size();
        owned.setMemory(0, owned.capacity(), (byte) 0);
        int at = 0;
        for (int i = 0; i < members; i++) {
            int end = at + (int) outSplits[i];
            for (int l = 0; l < count; l++) {
                int length = cut[l][rank + 1] - cut[l][rank];
                int bytes = recvLengths.getInt(4 * (i * count + l));
                requireWithin(at, bytes, end, l, "member " + i + "'s chunk");
                int into = ownedIndex[l][rank];
                if (encoders[l] == null) {
                    requireRaw(bytes, length, l);
                    for (int k = 0; k < length; k++) {
                        int o = 4 * (into + k);
                        owned.putFloat(o, owned.getFloat(o) + receive.getFloat(at + 4 * k));
                    }
                } else if (length > 0) {
                    encoders[l].decodeAdd(receive, at, bytes, 1f, owned, into, length);
                } else {
                    requireEmpty(bytes, l);
                }
                at += bytes;
            }
        }
    }

    /**
     * Stages this owner's block in the send buffer: each summed chunk, raw or re-encoded with the owner's residual
     * added and kept. Returns the block's length; {@link #myLengths} holds its parts.
     */
    private int encodeOwnedChunks(long round, int rank) {
        int at = 0;
        for (int l = 0; l < layers.size(); l++) {
            int length = cut[l][rank + 1] - cut[l][rank];
            int from = ownedIndex[l][rank];
            Encoder encoder = encoders[l];
            int written = 0;
            if (encoder == null) {
                written = 4 * length;
                send.putBytes(at, owned, 4 * from, written);
            } else if (length > 0) {
                ErrorFeedback.addResidual(owned, from, ownerResidual, ownerIndex[l][rank], length);
                written = encoder.encodeKeepingResidual(owned, from, length, send, at,
                        Seeds.ofChunk(Seeds.of(seed, round, l, rank), 1, rank), ownerResidual, ownerIndex[l][rank]);
            }
            myLengths.putInt(4 * l, written);
            at += written;
        }
        return at;
    }

    /** Writes owner {@code m}'s summed chunks from the gathered buffer into the (zeroed) bucket. */
    private void decodeOwner(int m, MutableDirectBuffer bucket) {
        int count = layers.size();
        int at = (int) bounds[m];
        int end = (int) bounds[m + 1];
        for (int l = 0; l < count; l++) {
            BucketLayer layer = layers.get(l);
            int length = cut[l][m + 1] - cut[l][m];
            int bytes = allLengths.getInt(4 * (m * count + l));
            requireWithin(at, bytes, end, l, "owner " + m + "'s chunk");
            if (encoders[l] == null) {
                requireRaw(bytes, length, l);
                bucket.putBytes(4 * (layer.index() + cut[l][m]), gathered, at, bytes);
            } else if (length > 0) {
                encoders[l].decodeAdd(gathered, at, bytes, 1f, bucket, layer.index() + cut[l][m], length);
            } else {
                requireEmpty(bytes, l);
            }
            at += bytes;
        }
    }

    /** The bytes of layer {@code l}'s chunk {@code m} where every encoder's length is fixed. */
    private int fixedBytes(int l, int m) {
        int length = cut[l][m + 1] - cut[l][m];
        return encoders[l] == null ? 4 * length : length == 0 ? 0 : encoders[l].maxEncodedBytes(length);
    }

    private void requireWithin(int at, int bytes, int end, int l, String what) {
        if (bytes < 0 || (long) at + bytes > end) {
            throw new IllegalArgumentException(what + " of layer '" + layers.get(l).name() + "' claims " + bytes
                    + " bytes at " + at + ", past its block's end " + end);
        }
    }

    private void requireRaw(int bytes, int length, int l) {
        if (bytes != 4 * length) {
            throw new IllegalArgumentException("a raw chunk of layer '" + layers.get(l).name() + "' holds " + bytes
                    + " bytes for " + length + " floats");
        }
    }

    private void requireEmpty(int bytes, int l) {
        if (bytes != 0) {
            throw new IllegalArgumentException("an empty chunk of layer '" + layers.get(l).name() + "' holds "
                    + bytes + " bytes");
        }
    }

    /**
     * Switches layer {@code l} to {@code encoder} (of the same kind: raw stays raw) from the next reduction on. The
     * chunks keep the cuts made for the first encoder, since the owners' residuals are laid out by them.
     */
    @Override
    public void use(int l, Encoder encoder) {
        if ((encoder == null) != (encoders[l] == null)) {
            throw new IllegalArgumentException("layer '" + layers.get(l).name() + "' cannot switch between raw and"
                    + " encoded");
        }
        encoders[l] = encoder;
        sizeBuffers();
    }

    /**
     * Lays the send buffer out for the most the current encoders can write, and grows the buffers to it; never
     * shrinks them.
     */
    private void sizeBuffers() {
        fixed = true;
        long largest = 0;
        for (int m = 0; m < members; m++) {
            long block = 0;
            for (int l = 0; l < layers.size(); l++) {
                int length = cut[l][m + 1] - cut[l][m];
                if (encoders[l] == null) {
                    block += 4L * length;
                } else {
                    fixed &= encoders[l].fixedLength();
                    block += length == 0 ? 0 : encoders[l].maxEncodedBytes(length);
                }
            }
            blockStart[m + 1] = Math.toIntExact(blockStart[m] + block);
            largest = Math.max(largest, block);
        }
        int total = blockStart[members];
        if (total > send.capacity()) {
            send = new UnsafeBuffer(ByteBuffer.allocateDirect(total));
            gathered = new UnsafeBuffer(ByteBuffer.allocateDirect(total));
        }
        if (largest * members > receive.capacity()) {
            receive = new UnsafeBuffer(ByteBuffer.allocateDirect(Math.toIntExact(largest * members)));
        }
    }

    private static UnsafeBuffer floats(long elements) {
        return new UnsafeBuffer(ByteBuffer.allocateDirect(Math.toIntExact(4 * elements)));
    }

    private static long max(long[] values) {
        long max = 0;
        for (long v : values) {
            max = Math.max(max, v);
        }
        return max;
    }

    @Override
    public Map<String, MutableDirectBuffer> state() {
        return Map.of("residual", residual, "owner_residual", ownerResidual);
    }
}
