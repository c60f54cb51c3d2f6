package dev.tessera.comm.compress;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.comm.compress.FedZip.Analysis;
import dev.tessera.comm.compress.FedZip.Encoding;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

class FedZipTest {

    /** ALGORITHMS.md 5, test oracle 1. */
    private static final float[] WORKED = {.02f, -.9f, .05f, .4f, -.01f, 0, 1.2f, -.35f, .03f, .07f, -1.1f, .5f, 0,
        .01f, -.04f, .8f, .02f, -.06f, .09f, .3f};

    private static UnsafeBuffer floats(float... values) {
        UnsafeBuffer b = new UnsafeBuffer(new byte[4 * values.length]);
        for (int i = 0; i < values.length; i++) {
            b.putFloat(4 * i, values[i]);
        }
        return b;
    }

    private static float[] toArray(UnsafeBuffer b, int n) {
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = b.getFloat(4 * i);
        }
        return values;
    }

    /** The bytes of one encoding, exactly as long as encode says. */
    private static UnsafeBuffer encode(FedZip fedZip, float[] x) {
        UnsafeBuffer out = new UnsafeBuffer(new byte[fedZip.maxEncodedBytes(x.length)]);
        int length = fedZip.encode(floats(x), 0, x.length, out, 0, 0);
        return new UnsafeBuffer(Arrays.copyOf(out.byteArray(), length));
    }

    /** Decodes with a fresh instance, as a receiver would. */
    private static float[] decode(UnsafeBuffer encoded, int n) {
        UnsafeBuffer out = new UnsafeBuffer(new byte[4 * n]);
        new FedZip(0.5, Encoding.GAP).decodeAdd(encoded, 0, encoded.capacity(), 1f, out, 0, n);
        return toArray(out, n);
    }

    /** Bits before the payload: header, centroids, then the code-length table or the per-cluster counts. */
    private static long overheadBits(Encoding encoding, int clusters) {
        return 8 + 32L * clusters + (encoding == Encoding.HUFFMAN ? 32 : 32L * clusters);
    }

    private static long payloadBits(Encoding encoding, Analysis a) {
        return switch (encoding) {
            case HUFFMAN -> a.huffmanSymbolBits();
            case POSITION -> a.positionBits();
            case GAP -> a.gammaGapBits();
        };
    }

    @Test
    void workedExample() {
        float[] decodedByHuffman = null;
        for (Encoding encoding : Encoding.values()) {
            FedZip fedZip = new FedZip(0.3, encoding);
            UnsafeBuffer encoded = encode(fedZip, WORKED);
            Analysis a = fedZip.lastAnalysis();
            assertEquals(6, a.survivors());
            assertArrayEquals(new float[] {-1.1f, 0.05f, 1.2f}, a.initialCentroids(), 1e-6f);
            assertArrayEquals(new float[] {-1.0f, 0.45f, 1.0f}, a.centroids(), 1e-6f);
            assertArrayEquals(new long[] {14, 2, 2, 2}, a.symbolCounts());
            int[] lengths = a.huffmanLengths();
            assertEquals(1, lengths[0]);
            int[] clusterLengths = Arrays.copyOfRange(lengths, 1, 4);
            Arrays.sort(clusterLengths);
            assertArrayEquals(new int[] {2, 3, 3}, clusterLengths);
            assertEquals(30, a.huffmanSymbolBits());
            assertEquals(30, a.positionBits());
            assertEquals(18, a.idealGapBits());
            assertEquals(34, a.gammaGapBits(), "gamma of gaps + 1: (2,10),(4,9),(7,10) = 3+7+5+7+5+7");
            assertEquals((overheadBits(encoding, 3) + payloadBits(encoding, a) + 7) / 8, encoded.capacity());

            float[] decoded = decode(encoded, WORKED.length);
            int[] kept = {1, 3, 6, 10, 11, 15};
            int[] cluster = {0, 1, 2, 0, 1, 2};
            float[] expected = new float[WORKED.length];
            for (int s = 0; s < kept.length; s++) {
                expected[kept[s]] = a.centroids()[cluster[s]];
            }
            assertArrayEquals(expected, decoded, "pruned positions are exactly 0");
            if (decodedByHuffman != null) {
                assertArrayEquals(decodedByHuffman, decoded, "all encodings decode the same values");
            }
            decodedByHuffman = decoded;
        }
    }

    @Test
    void randomInputsDecodeExactlyToTheSpecifiedQuantization() {
        SplittableRandom rng = new SplittableRandom(5);
        for (int trial = 0; trial < 60; trial++) {
            int n = 1 + rng.nextInt(3000);
            double keep = new double[] {0.001, 0.01, 0.2, 0.5, 1.0}[trial % 5];
            float[] x = randomUpdate(rng, n);
            float[] expected = ReferenceFedZip.quantize(x, keep);
            for (Encoding encoding : Encoding.values()) {
                FedZip fedZip = new FedZip(keep, encoding);
                UnsafeBuffer encoded = encode(fedZip, x);
                Analysis a = fedZip.lastAnalysis();
                String where = "trial " + trial + " n " + n + " keep " + keep + " " + encoding;
                assertTrue(encoded.capacity() <= fedZip.maxEncodedBytes(n), where);
                long bits = a.survivors() == 0 ? 8 : overheadBits(encoding, a.centroids().length)
                        + payloadBits(encoding, a);
                assertEquals((bits + 7) / 8, encoded.capacity(), where);
                assertTrue(a.huffmanSymbolBits() <= 2L * n, where);

                float[] decoded = decode(encoded, n);
                assertArrayEquals(expected, decoded, where);
                Set<Float> distinct = new HashSet<>();
                for (int i = 0; i < n; i++) {
                    distinct.add(decoded[i]);
                }
                distinct.add(0f);
                assertTrue(distinct.size() <= 4, where + ": " + distinct);

                float scale = (float) rng.nextGaussian();
                float[] before = randomUpdate(rng, n);
                UnsafeBuffer dst = floats(before);
                fedZip.decodeAdd(encoded, 0, encoded.capacity(), scale, dst, 0, n);
                for (int i = 0; i < n; i++) {
                    float want = expected[i] == 0 ? before[i] : before[i] + scale * expected[i];
                    assertEquals(want, dst.getFloat(4 * i), where + " element " + i);
                }
            }
        }
    }

    @Test
    void maxEncodedBytesBoundsTheWorstInputs() {
        // Everything kept, three values interleaved: every gap is 3, the most Elias gamma bits per position.
        for (int n : new int[] {1, 2, 3, 4, 7, 8, 9, 100, 1023, 1024, 1025, 4099}) {
            float[] x = new float[n];
            for (int i = 0; i < n; i++) {
                x[i] = i % 3 - 1.5f;
            }
            for (Encoding encoding : Encoding.values()) {
                FedZip fedZip = new FedZip(1.0, encoding);
                assertTrue(encode(fedZip, x).capacity() <= fedZip.maxEncodedBytes(n), "n " + n + " " + encoding);
            }
        }
    }

    @Test
    void edgeCases() {
        for (Encoding encoding : Encoding.values()) {
            FedZip fedZip = new FedZip(0.5, encoding);
            UnsafeBuffer zeros = encode(fedZip, new float[] {0, 0, 0, 0});
            assertEquals(1, zeros.capacity(), "all zeros: the header's flag alone");
            assertEquals(0, fedZip.lastAnalysis().survivors());
            assertArrayEquals(new float[4], decode(zeros, 4));
            assertEquals(1, encode(fedZip, new float[0]).capacity(), "nothing to send is all zero too");

            FedZip all = new FedZip(1.0, encoding);
            assertArrayEquals(new float[] {-3f}, decode(encode(all, new float[] {-3f}), 1), "one element");
            assertEquals(1, encode(new FedZip(0.3, encoding), new float[] {-3f}).capacity(), "round(0.3) keeps none");

            float[] x = {0.1f, -0.2f, 7.25f, 0.3f, 0, 0, 0.05f, -0.1f, 0.2f, 0.01f};
            FedZip tenth = new FedZip(0.1, encoding);
            float[] decoded = decode(encode(tenth, x), x.length);
            assertArrayEquals(new float[] {7.25f}, tenth.lastAnalysis().centroids(), "k_eff 1: the value itself");
            float[] expected = new float[x.length];
            expected[2] = 7.25f;
            assertArrayEquals(expected, decoded);

            float[] ties = {1, -1, 1, -1, 1, -1};
            FedZip half = new FedZip(0.5, encoding);
            assertArrayEquals(ties, decode(encode(half, ties), ties.length), "all tied magnitudes are kept");
            assertEquals(6, half.lastAnalysis().survivors());
        }
    }

    @Test
    void refusesNonFiniteValues() {
        FedZip fedZip = new FedZip(0.5, Encoding.HUFFMAN);
        UnsafeBuffer out = new UnsafeBuffer(new byte[fedZip.maxEncodedBytes(2)]);
        assertThrows(IllegalArgumentException.class, () -> fedZip.encode(floats(1f, Float.NaN), 0, 2, out, 0, 0));
        assertThrows(IllegalArgumentException.class,
                () -> fedZip.encode(floats(Float.POSITIVE_INFINITY, 1f), 0, 2, out, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new FedZip(0, Encoding.GAP));
        assertThrows(IllegalArgumentException.class, () -> new FedZip(1.5, Encoding.GAP));
    }

    @Test
    void refusesTruncatedAndMalformedBytesLeavingTheDestinationAlone() {
        SplittableRandom rng = new SplittableRandom(17);
        int n = 200;
        float[] x = randomUpdate(rng, n);
        for (Encoding encoding : Encoding.values()) {
            UnsafeBuffer encoded = encode(new FedZip(0.2, encoding), x);
            int length = encoded.capacity();
            for (int cut = 0; cut < length; cut++) {
                int shorter = cut;
                assertThrows(IllegalArgumentException.class, () -> decodeInto(encoded, shorter, n),
                        encoding + " cut to " + cut + " of " + length);
            }
            UnsafeBuffer longer = new UnsafeBuffer(Arrays.copyOf(encoded.byteArray(), length + 1));
            assertThrows(IllegalArgumentException.class, () -> decodeInto(longer, length + 1, n), "a stray byte");
            // Any single flipped bit either still decodes or is refused: never another exception, and a refusal
            // leaves the destination as it was.
            for (int bit = 0; bit < 8 * length; bit++) {
                UnsafeBuffer flipped = new UnsafeBuffer(encoded.byteArray().clone());
                flipped.putByte(bit / 8, (byte) (flipped.getByte(bit / 8) ^ (0x80 >>> (bit % 8))));
                decodeOrRefuse(flipped, length, n);
            }
        }
        for (int trial = 0; trial < 2000; trial++) {
            byte[] garbage = new byte[rng.nextInt(40)];
            for (int i = 0; i < garbage.length; i++) {
                garbage[i] = (byte) rng.nextInt(256);
            }
            decodeOrRefuse(new UnsafeBuffer(garbage), garbage.length, 1 + rng.nextInt(50));
        }
    }

    @Test
    void refusesAPositionInTwoClusters() {
        UnsafeBuffer bytes = new UnsafeBuffer(new byte[32]);
        BitWriter writer = new BitWriter();
        writer.start(bytes, 0);
        writer.write(Encoding.POSITION.ordinal() << 2 | 2, 8);
        writer.write(Float.floatToRawIntBits(-1f), 32);
        writer.write(Float.floatToRawIntBits(1f), 32);
        for (int cluster = 0; cluster < 2; cluster++) {
            writer.write(1, 32);
            writer.write(3, 3); // n = 8: 3-bit positions
        }
        int length = writer.finish();
        assertThrows(IllegalArgumentException.class, () -> decodeInto(bytes, length, 8));
    }

    @Test
    void errorFeedbackKeepsExactlyWhatWasNotSent() {
        SplittableRandom rng = new SplittableRandom(23);
        int n = 1000;
        float[] a = randomUpdate(rng, n);
        for (Encoding encoding : Encoding.values()) {
            FedZip fedZip = new FedZip(0.05, encoding);
            UnsafeBuffer encoded = encode(fedZip, a);
            float[] decoded = decode(encoded, n);
            UnsafeBuffer residual = new UnsafeBuffer(new byte[4 * n]);
            double squared = ErrorFeedback.keepResidual(fedZip, floats(a), 0, n, encoded, 0, encoded.capacity(),
                    residual, 0);
            double expectedSquared = 0;
            for (int i = 0; i < n; i++) {
                assertEquals(a[i] - decoded[i], residual.getFloat(4 * i), encoding + " element " + i);
                expectedSquared += (double) residual.getFloat(4 * i) * residual.getFloat(4 * i);
            }
            assertEquals(expectedSquared, squared, 1e-9 * expectedSquared);
        }
    }

    @Test
    void gapEncodingOfAMillionGaussiansAtKeep0001IsUnderAHundredthOfFloat32() {
        int n = 1_000_000;
        SplittableRandom rng = new SplittableRandom(29);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rng.nextGaussian();
        }
        FedZip fedZip = new FedZip(0.001, Encoding.GAP);
        UnsafeBuffer encoded = encode(fedZip, x);
        assertTrue(encoded.capacity() < 4L * n / 100, encoded.capacity() + " bytes");
        assertArrayEquals(ReferenceFedZip.quantize(x, 0.001), decode(encoded, n));
    }

    private static void decodeInto(UnsafeBuffer encoded, int length, int n) {
        new FedZip(0.5, Encoding.HUFFMAN).decodeAdd(encoded, 0, length, 1f, new UnsafeBuffer(new byte[4 * n]), 0, n);
    }

    private static void decodeOrRefuse(UnsafeBuffer bytes, int length, int n) {
        UnsafeBuffer dst = new UnsafeBuffer(new byte[4 * n]);
        try {
            new FedZip(0.5, Encoding.HUFFMAN).decodeAdd(bytes, 0, length, 1f, dst, 0, n);
        } catch (IllegalArgumentException refused) {
            assertArrayEquals(new float[n], toArray(dst, n), "a refusal adds nothing");
        }
    }

    /** Gaussians, with exact zeros and repeated values so that ties and zero skipping are exercised. */
    private static float[] randomUpdate(SplittableRandom rng, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            int kind = rng.nextInt(10);
            x[i] = kind == 0 ? 0 : kind == 1 ? (rng.nextBoolean() ? 2.5f : -2.5f) : (float) rng.nextGaussian();
        }
        return x;
    }

    /**
     * ALGORITHMS.md 5's normative pipeline written plainly (sort for the threshold, per-cluster lists), as the
     * oracle for the decoded values.
     */
    private static final class ReferenceFedZip {

        static float[] quantize(float[] x, double keep) {
            int n = x.length;
            float[] y = new float[n];
            int keepCount = (int) Math.rint(keep * n);
            if (keepCount == 0) {
                return y;
            }
            float[] magnitudes = new float[n];
            for (int i = 0; i < n; i++) {
                magnitudes[i] = Math.abs(x[i]);
            }
            Arrays.sort(magnitudes);
            float threshold = magnitudes[n - keepCount];
            int[] kept = java.util.stream.IntStream.range(0, n)
                    .filter(i -> x[i] != 0 && Math.abs(x[i]) >= threshold).toArray();
            if (kept.length == 0) {
                return y;
            }
            double[] vals = Arrays.stream(kept).mapToDouble(i -> x[i]).toArray();
            int k = (int) Math.min(3, Arrays.stream(vals).distinct().count());
            double min = Arrays.stream(vals).min().orElseThrow();
            double max = Arrays.stream(vals).max().orElseThrow();
            double[] c = new double[k];
            for (int j = 0; j < k; j++) {
                c[j] = j == k - 1 ? max : min + j * (max - min) / (k - 1);
            }
            int[] a = new int[vals.length];
            for (int iteration = 0; iteration <= 4; iteration++) {
                for (int s = 0; s < vals.length; s++) {
                    a[s] = nearest(c, vals[s]);
                }
                if (iteration == 4) {
                    break; // the fifth assignment is the final one, with the final centroids
                }
                for (int j = 0; j < k; j++) {
                    double sum = 0;
                    int count = 0;
                    for (int s = 0; s < vals.length; s++) {
                        if (a[s] == j) {
                            sum += vals[s];
                            count++;
                        }
                    }
                    if (count > 0) {
                        c[j] = sum / count;
                    }
                }
            }
            for (int s = 0; s < kept.length; s++) {
                y[kept[s]] = (float) c[a[s]];
            }
            return y;
        }

        private static int nearest(double[] c, double v) {
            int best = 0;
            for (int j = 1; j < c.length; j++) {
                if (Math.abs(v - c[j]) < Math.abs(v - c[best])) {
                    best = j;
                }
            }
            return best;
        }
    }
}
