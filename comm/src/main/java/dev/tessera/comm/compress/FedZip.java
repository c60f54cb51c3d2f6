package dev.tessera.comm.compress;

import java.util.Arrays;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * FedZip (ALGORITHMS.md 5, normative pipeline): keep the {@code round(z x n)} largest magnitudes (ties at the
 * threshold kept, zeros never), quantize the survivors to at most three centroids by {@link ScalarKMeans}, and
 * code the symbol stream {0 = pruned, 1..3 = cluster} losslessly by one {@link Encoding}. Decoding gives each
 * survivor its cluster's float32 centroid and every pruned position exactly 0.
 *
 * <p>Wire format, bits most significant first ({@link BitWriter}), the last byte zero-padded:
 * <ul>
 *   <li>a header byte {@code encoding << 2 | k}, where k in [0, 3] is the number of centroids and 0 flags "all
 *       zero" (then the header is the whole encoding);</li>
 *   <li>the k centroids as float32 bits, ascending;</li>
 *   <li>HUFFMAN: the four code lengths (zero, c1, c2, c3) in 8 bits each, then the n symbols' canonical codes;</li>
 *   <li>POSITION: per cluster, a 32-bit count, then its positions ascending in {@code max(1, ceil(log2 n))} bits;</li>
 *   <li>GAP: per cluster, a 32-bit count, then Elias gamma of {@code g + 1} for each gap g between its ascending
 *       positions (the first gap is the first position).</li>
 * </ul>
 * The header says which encoding follows, so any FedZip instance decodes any FedZip encoding.
 *
 * <p>Scratch arrays are per instance and grow with n, shared by encode and decode: an instance is not
 * thread-safe. {@link #lastAnalysis} reports what the last encode found, for size accounting and tests.
 */
public final class FedZip implements Encoder {

    /** The lossless stage; ALGORITHMS.md 5's (H), (P) and (D). */
    public enum Encoding { HUFFMAN, POSITION, GAP }

    /**
     * What one encode found. Bit counts cover the coded symbols or positions only, not the header, centroids,
     * code-length table or list counts: {@code huffmanSymbolBits} is sum(count x code length), {@code positionBits}
     * is survivors x position width, {@code idealGapBits} is the reference code's undecodable sum(bitlen(g)) and
     * {@code gammaGapBits} what GAP puts on the wire. Arrays: {@code symbolCounts} and {@code huffmanLengths} are
     * indexed by symbol (zero, c1, c2, c3); the centroid arrays have one entry per cluster.
     */
    public record Analysis(int survivors, long[] symbolCounts, float[] initialCentroids, float[] centroids,
                           int[] huffmanLengths, long huffmanSymbolBits, long positionBits, long idealGapBits,
                           long gammaGapBits) {
    }

    private static final Encoding[] ENCODINGS = Encoding.values();
    private static final int CLUSTERS = ScalarKMeans.MAX_CLUSTERS;
    private static final int HEADER_BITS = 8;
    private static final int CENTROID_BITS = 32;
    private static final int COUNT_BITS = 32;
    private static final int CODE_LENGTH_BITS = 8;

    private final double keep;
    private final Encoding encoding;
    private final ScalarKMeans kMeans = new ScalarKMeans();
    private final HuffmanCode encodeCode = new HuffmanCode();
    private final HuffmanCode decodeCode = new HuffmanCode();
    private final BitWriter writer = new BitWriter();
    private final BitReader reader = new BitReader();
    private final float[] decodedCentroids = new float[CLUSTERS];
    private final int[] wireLengths = new int[HuffmanCode.SYMBOLS];
    private final int[] clusterStart = new int[CLUSTERS + 1]; // decode: cluster j's positions are [start j, start j+1)
    private final int[] lastPosition = new int[CLUSTERS];
    private float[] values = new float[0]; // magnitudes for the selection, then the survivors' values
    private int[] positions = new int[0]; // the survivors' indices, ascending; on decode, each cluster's positions
    private byte[] symbols = new byte[0]; // each survivor's cluster; on Huffman decode, each element's symbol

    // The last encode's analysis, kept in fields so that encoding allocates nothing.
    private int survivors;
    private int clusters;
    private final long[] symbolCounts = new long[HuffmanCode.SYMBOLS];
    private final float[] centroids = new float[CLUSTERS];
    private final float[] initialCentroids = new float[CLUSTERS];
    private long positionBits;
    private long idealGapBits;
    private long gammaGapBits;

    public FedZip(double keep, Encoding encoding) {
        if (!(keep > 0 && keep <= 1)) {
            throw new IllegalArgumentException("FedZip keep fraction z must be in (0, 1], got " + keep);
        }
        if (encoding == null) {
            throw new IllegalArgumentException("FedZip needs an encoding");
        }
        this.keep = keep;
        this.encoding = encoding;
    }

    public double keep() {
        return keep;
    }

    public Encoding encoding() {
        return encoding;
    }

    /** {@code round(z x n)}, half to even as the reference's Python rounds; more survive on ties. */
    public int kept(int n) {
        return (int) Math.rint(keep * n);
    }

    @Override
    public int maxEncodedBytes(int n) {
        long fixed = HEADER_BITS + CLUSTERS * CENTROID_BITS;
        long payload = switch (encoding) {
            // Huffman is optimal among prefix codes, so no worse than a fixed 2-bit code over the four symbols.
            case HUFFMAN -> HuffmanCode.SYMBOLS * CODE_LENGTH_BITS + 2L * n;
            case POSITION -> CLUSTERS * COUNT_BITS + (long) n * positionWidth(n);
            // A cluster of m positions below n costs at most m(2 log2(n/m + 1) + 1) gamma bits (Jensen); that is
            // concave and increasing in m, so three clusters cost at most 3 x that at m = n/3: 5n.
            case GAP -> CLUSTERS * COUNT_BITS + 5L * n;
        };
        return Math.toIntExact((fixed + payload + 7) / 8);
    }

    @Override
    public int encode(DirectBuffer src, int index, int n, MutableDirectBuffer out, int outOffset, long seed) {
        grow(n);
        for (int i = 0; i < n; i++) {
            float v = src.getFloat((index + i) << 2);
            if (!Float.isFinite(v)) {
                throw new IllegalArgumentException("FedZip: element " + i + " of " + n + " is " + v);
            }
            values[i] = Math.abs(v);
        }
        int keepCount = kept(n);
        survivors = keepCount == 0 ? 0 : selectSurvivors(src, index, n, Selection.kthLargest(values, n, keepCount));
        clusters = survivors == 0 ? 0 : kMeans.cluster(values, survivors, symbols);
        analyse(n);
        writer.start(out, outOffset);
        writer.write(encoding.ordinal() << 2 | clusters, HEADER_BITS);
        if (clusters == 0) {
            return writer.finish();
        }
        for (int j = 0; j < clusters; j++) {
            writer.write(Float.floatToRawIntBits(centroids[j]), CENTROID_BITS);
        }
        switch (encoding) {
            case HUFFMAN -> writeHuffman(n);
            case POSITION -> writePositions(n);
            case GAP -> writeGaps();
        }
        return writer.finish();
    }

    @Override
    public void decodeAdd(DirectBuffer in, int inOffset, int length, float scale, MutableDirectBuffer dst, int index,
                          int n) {
        grow(n);
        reader.start(in, inOffset, length);
        int header = reader.read(HEADER_BITS);
        int k = header & 3;
        int encodingCode = header >>> 2;
        if (encodingCode >= ENCODINGS.length) {
            throw new IllegalArgumentException("FedZip header " + header + " names no encoding");
        }
        for (int j = 0; j < k; j++) {
            decodedCentroids[j] = Float.intBitsToFloat(reader.read(CENTROID_BITS));
            if (!Float.isFinite(decodedCentroids[j])) {
                throw new IllegalArgumentException("FedZip centroid " + j + " is " + decodedCentroids[j]);
            }
        }
        if (k == 0) {
            reader.finish();
        } else if (ENCODINGS[encodingCode] == Encoding.HUFFMAN) {
            readHuffman(k, n);
            reader.finish(); // before anything is added, so malformed bytes leave dst as it was
            addSymbols(scale, dst, index, n);
        } else {
            readPositionLists(k, n, ENCODINGS[encodingCode] == Encoding.GAP);
            reader.finish();
            requireDisjointClusters(k);
            addPositionLists(k, scale, dst, index);
        }
    }

    /** The last encode's analysis; arrays are copies. */
    public Analysis lastAnalysis() {
        int[] lengths = new int[HuffmanCode.SYMBOLS];
        long huffmanBits = 0;
        if (clusters > 0) { // an all-zero encoding builds no code
            for (int s = 0; s < lengths.length; s++) {
                lengths[s] = encodeCode.length(s);
                huffmanBits += symbolCounts[s] * lengths[s];
            }
        }
        return new Analysis(survivors, symbolCounts.clone(), Arrays.copyOf(initialCentroids, clusters),
                Arrays.copyOf(centroids, clusters), lengths, huffmanBits, positionBits, idealGapBits, gammaGapBits);
    }

    /** {@code max(1, ceil(log2 n))}: the bits of one position below n. */
    static int positionWidth(int n) {
        return Math.max(1, 32 - Integer.numberOfLeadingZeros(n - 1));
    }

    /** Moves the survivors' indices to {@code positions} and their values to {@code values}; returns how many. */
    private int selectSurvivors(DirectBuffer src, int index, int n, float threshold) {
        int m = 0;
        for (int i = 0; i < n; i++) {
            float v = src.getFloat((index + i) << 2);
            if (v != 0 && Math.abs(v) >= threshold) {
                positions[m] = i;
                values[m++] = v; // m <= i: the magnitudes overwritten are no longer needed
            }
        }
        return m;
    }

    /** Fills the analysis fields and, when there are survivors, the Huffman code for their symbol counts. */
    private void analyse(int n) {
        Arrays.fill(symbolCounts, 0);
        symbolCounts[0] = n - survivors;
        for (int j = 0; j < clusters; j++) {
            initialCentroids[j] = (float) kMeans.initialCentroid(j);
            centroids[j] = (float) kMeans.centroid(j);
        }
        Arrays.fill(lastPosition, 0); // so that a cluster's first gap is its first position
        idealGapBits = 0;
        gammaGapBits = 0;
        for (int s = 0; s < survivors; s++) {
            int j = symbols[s];
            symbolCounts[1 + j]++;
            int gap = positions[s] - lastPosition[j];
            lastPosition[j] = positions[s];
            idealGapBits += Math.max(1, 32 - Integer.numberOfLeadingZeros(gap));
            gammaGapBits += BitWriter.eliasGammaBits(gap + 1);
        }
        positionBits = (long) survivors * positionWidth(n);
        if (clusters > 0) {
            encodeCode.build(symbolCounts);
        }
    }

    private void writeHuffman(int n) {
        for (int s = 0; s < HuffmanCode.SYMBOLS; s++) {
            writer.write(encodeCode.length(s), CODE_LENGTH_BITS);
        }
        int next = 0; // the next survivor: survivors are in ascending index order
        for (int i = 0; i < n; i++) {
            int symbol = next < survivors && positions[next] == i ? 1 + symbols[next++] : 0;
            encodeCode.write(writer, symbol);
        }
    }

    private void writePositions(int n) {
        int width = positionWidth(n);
        for (int j = 0; j < clusters; j++) {
            writer.write((int) symbolCounts[1 + j], COUNT_BITS);
            for (int s = 0; s < survivors; s++) {
                if (symbols[s] == j) {
                    writer.write(positions[s], width);
                }
            }
        }
    }

    private void writeGaps() {
        for (int j = 0; j < clusters; j++) {
            writer.write((int) symbolCounts[1 + j], COUNT_BITS);
            int last = 0;
            for (int s = 0; s < survivors; s++) {
                if (symbols[s] == j) {
                    writer.writeEliasGamma(positions[s] - last + 1);
                    last = positions[s];
                }
            }
        }
    }

    private void readHuffman(int k, int n) {
        for (int s = 0; s < HuffmanCode.SYMBOLS; s++) {
            wireLengths[s] = reader.read(CODE_LENGTH_BITS);
        }
        decodeCode.useLengths(wireLengths, 1 + k);
        for (int i = 0; i < n; i++) {
            symbols[i] = (byte) decodeCode.read(reader);
        }
    }

    private void addSymbols(float scale, MutableDirectBuffer dst, int index, int n) {
        for (int i = 0; i < n; i++) {
            if (symbols[i] != 0) {
                int o = (index + i) << 2;
                dst.putFloat(o, dst.getFloat(o) + scale * decodedCentroids[symbols[i] - 1]);
            }
        }
    }

    /** Reads each cluster's count and ascending positions below n into {@code positions} and {@code clusterStart}. */
    private void readPositionLists(int k, int n, boolean gaps) {
        int width = positionWidth(n);
        int total = 0;
        for (int j = 0; j < k; j++) {
            clusterStart[j] = total;
            long count = Integer.toUnsignedLong(reader.read(COUNT_BITS));
            if (count > n - total) {
                throw new IllegalArgumentException("FedZip cluster " + j + " claims " + count + " positions, "
                        + (n - total) + " of " + n + " left");
            }
            long last = -1;
            for (long t = 0; t < count; t++) {
                long p = gaps ? Math.max(last, 0) + reader.readEliasGamma() - 1 : reader.read(width);
                if (p <= last || p >= n) {
                    throw new IllegalArgumentException("FedZip cluster " + j + " position " + p + " after " + last
                            + " is not ascending inside [0, " + n + ")");
                }
                positions[total++] = (int) p;
                last = p;
            }
        }
        clusterStart[k] = total;
    }

    /** Two clusters claiming one position would decode it twice. */
    private void requireDisjointClusters(int k) {
        for (int a = 0; a < k; a++) {
            for (int b = a + 1; b < k; b++) {
                int i = clusterStart[a];
                int j = clusterStart[b];
                while (i < clusterStart[a + 1] && j < clusterStart[b + 1]) {
                    if (positions[i] == positions[j]) {
                        throw new IllegalArgumentException("FedZip position " + positions[i] + " is in clusters "
                                + a + " and " + b);
                    }
                    if (positions[i] < positions[j]) {
                        i++;
                    } else {
                        j++;
                    }
                }
            }
        }
    }

    private void addPositionLists(int k, float scale, MutableDirectBuffer dst, int index) {
        for (int j = 0; j < k; j++) {
            float value = scale * decodedCentroids[j];
            for (int t = clusterStart[j]; t < clusterStart[j + 1]; t++) {
                int o = (index + positions[t]) << 2;
                dst.putFloat(o, dst.getFloat(o) + value);
            }
        }
    }

    private void grow(int n) {
        if (values.length < n) {
            values = new float[n];
            positions = new int[n];
            symbols = new byte[n];
        }
    }
}
