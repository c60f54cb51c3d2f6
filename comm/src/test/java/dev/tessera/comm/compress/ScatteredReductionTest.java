package dev.tessera.comm.compress;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.comm.InProcessComms;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

/**
 * Two and three ranks over real Aeron in this JVM. Every member ends each round with the same bits, and they are
 * those of a reference that runs the two stages by hand with the same encoders and seeds: each member's chunk
 * encodings decoded and summed in rank order by the chunk's owner, the owner's re-encoding (with its residual)
 * decoded. Raw layers are summed exactly; with error feedback what was sent plus what is still owed adds up to the
 * true gradients; the bytes each rank handed to Aeron are the payload layout's, plus the frames' headers; and a
 * reduction loaded with another's state continues with the same bits.
 */
class ScatteredReductionTest {

    private static final long SEED = 11;
    private static final int HEADER = 32;

    private static int basePort() {
        return 56000 + (int) (ProcessHandle.current().pid() % 300) * 8;
    }

    /** A 2000-element layer (8-bit QSGD, buckets of 64), a raw bias, and a 90-element layer whose chunk 0 is empty. */
    private static List<BucketLayer> qsgdLayers() {
        return List.of(new BucketLayer("w1", 0, 40, 50), new BucketLayer("bias", 2000, 7, 1),
                new BucketLayer("w2", 2007, 3, 30));
    }

    private static Encoder[] qsgdEncoders() {
        return new Encoder[] {new Qsgd(8, 64), null, new Qsgd(4, 64)};
    }

    @Test
    void cutsFallOnBucketBoundariesAndMayBeEmpty() {
        assertArrayEquals(new int[] {0, 256, 640, 1000}, ScatteredReduction.cuts(1000, 128, 3));
        assertArrayEquals(new int[] {0, 0, 64, 90}, ScatteredReduction.cuts(90, 64, 3));
        assertArrayEquals(new int[] {0, 3, 7}, ScatteredReduction.cuts(7, 1, 2));
        assertArrayEquals(new int[] {0, 0, 0, 5}, ScatteredReduction.cuts(5, 128, 3));
    }

    @Test
    void threeMembersMatchTheReferenceAndErrorFeedbackKeepsTheSum() throws Exception {
        int members = 3;
        List<BucketLayer> layers = qsgdLayers();
        int n = 2097;
        try (InProcessComms comms = InProcessComms.connect("scattered3-" + ProcessHandle.current().pid(), members,
                basePort())) {
            int[] observed = new int[members];
            ScatteredReduction[] reductions = new ScatteredReduction[members];
            for (int r = 0; r < members; r++) {
                int rank = r;
                LayerObserver count = new LayerObserver() {
                    @Override
                    public void encoded(int layer, int bytes, double error) {
                        observed[rank] += bytes;
                    }
                };
                reductions[r] = new ScatteredReduction(layers, qsgdEncoders(), members, SEED, count);
            }
            Reference reference = new Reference(layers, qsgdEncoders(), members, n);
            SplittableRandom rng = new SplittableRandom(5);
            double[] trueSum = new double[n];
            double[] sentSum = new double[n];
            int rounds = 6;
            for (int t = 0; t < rounds; t++) {
                float[][] inputs = gaussians(rng, members, n);
                for (float[] input : inputs) {
                    for (int i = 0; i < n; i++) {
                        trueSum[i] += input[i];
                    }
                }
                long[] sent = new long[members];
                Arrays.fill(observed, 0);
                float[][] results = reduceOnAll(comms, reductions, inputs, t, sent);
                float[] expected = reference.round(inputs, t);
                for (int r = 0; r < members; r++) {
                    assertBits(expected, results[r], "round " + t + ", rank " + r);
                    assertEquals(reference.expectedBytesSent(r), sent[r], "round " + t + ": rank " + r
                            + "'s bytes at the transport");
                    assertEquals(reference.phase1Bytes(r), observed[r], "round " + t + ": rank " + r
                            + "'s encoded bytes told to the observer");
                }
                for (int i = 2000; i < 2007; i++) {
                    float exact = 0;
                    for (int r = 0; r < members; r++) {
                        exact += inputs[r][i];
                    }
                    assertEquals(Float.floatToIntBits(exact), Float.floatToIntBits(results[0][i]), "raw element " + i);
                }
                if (t == 0) {
                    assertWithinQuantisation(inputs, results[0], 0, 2000, 64, 127);
                }
                for (int i = 0; i < n; i++) {
                    sentSum[i] += results[0][i];
                }
            }
            // What was sent plus what is owed (every member's residual, every owner's) is what the gradients summed
            // to, up to float rounding; the residuals stay one step's rounding, however many rounds ran.
            // Bounded by one step per member (bucket scales of standard normals stay under 5) and one of the owner
            // (its sum's scale under 3 x 5): 8-bit w1 has 127 levels, 4-bit w2 has 7.
            double[] owed = owed(layers, qsgdEncoders(), reductions);
            for (int i = 0; i < n; i++) {
                assertEquals(trueSum[i], sentSum[i] + owed[i], 2e-4, "element " + i);
                double bound = 2 * members * 5.0 / (i < 2000 ? 127 : 7);
                assertTrue(Math.abs(owed[i]) <= bound, "element " + i + " still owes " + owed[i]);
            }
        }
    }

    @Test
    void twoMembersWithAVariableLengthEncoderExchangeLengths() throws Exception {
        int members = 2;
        List<BucketLayer> layers = List.of(new BucketLayer("w1", 0, 20, 30), new BucketLayer("bias", 600, 5, 1),
                new BucketLayer("w2", 605, 10, 30));
        Supplier<Encoder[]> encoders = () -> new Encoder[] {new TopK(0.1), null, new Qsgd(6, 32)};
        int n = 905;
        try (InProcessComms comms = InProcessComms.connect("scattered2-" + ProcessHandle.current().pid(), members,
                basePort() + 3)) {
            ScatteredReduction[] reductions = new ScatteredReduction[members];
            for (int r = 0; r < members; r++) {
                reductions[r] = new ScatteredReduction(layers, encoders.get(), members, SEED, LayerObserver.NONE);
            }
            Reference reference = new Reference(layers, encoders.get(), members, n);
            SplittableRandom rng = new SplittableRandom(7);
            for (int t = 0; t < 3; t++) {
                float[][] inputs = gaussians(rng, members, n);
                long[] sent = new long[members];
                float[][] results = reduceOnAll(comms, reductions, inputs, t, sent);
                float[] expected = reference.round(inputs, t);
                for (int r = 0; r < members; r++) {
                    assertBits(expected, results[r], "round " + t + ", rank " + r);
                    // Lengths: an all-to-all and an all-gather of one int32 per layer, one frame to each peer.
                    long lengths = 2L * (members - 1) * (HEADER + 4 * layers.size());
                    assertEquals(lengths + reference.expectedBytesSent(r), sent[r], "round " + t + ": rank " + r
                            + "'s bytes at the transport");
                }
            }
        }
    }

    @Test
    void aReductionLoadedWithAnothersStateContinuesWithTheSameBits() throws Exception {
        int members = 3;
        List<BucketLayer> layers = qsgdLayers();
        int n = 2097;
        try (InProcessComms comms = InProcessComms.connect("scattered-state-" + ProcessHandle.current().pid(),
                members, basePort() + 5)) {
            ScatteredReduction[] running = new ScatteredReduction[members];
            for (int r = 0; r < members; r++) {
                running[r] = new ScatteredReduction(layers, qsgdEncoders(), members, SEED, LayerObserver.NONE);
            }
            SplittableRandom rng = new SplittableRandom(9);
            for (int t = 0; t < 3; t++) {
                reduceOnAll(comms, running, gaussians(rng, members, n), t, new long[members]);
            }
            ScatteredReduction[] resumed = new ScatteredReduction[members];
            for (int r = 0; r < members; r++) {
                resumed[r] = new ScatteredReduction(layers, qsgdEncoders(), members, SEED, LayerObserver.NONE);
                Map<String, MutableDirectBuffer> from = running[r].state();
                Map<String, MutableDirectBuffer> into = resumed[r].state();
                assertEquals(from.keySet(), into.keySet());
                assertEquals(Map.of("residual", 4 * 2090, "owner_residual", 4 * 768),
                        Map.of("residual", into.get("residual").capacity(), "owner_residual",
                                into.get("owner_residual").capacity()));
                for (Map.Entry<String, MutableDirectBuffer> e : from.entrySet()) {
                    into.get(e.getKey()).putBytes(0, e.getValue(), 0, e.getValue().capacity());
                }
            }
            float[][] inputs = gaussians(rng, members, n);
            float[][] continued = reduceOnAll(comms, running, inputs, 3, new long[members]);
            float[][] reloaded = reduceOnAll(comms, resumed, inputs, 3, new long[members]);
            for (int r = 0; r < members; r++) {
                assertBits(continued[r], reloaded[r], "rank " + r);
            }
        }
    }

    // ---------------------------------------------------------------- helpers

    private static float[][] gaussians(SplittableRandom rng, int members, int n) {
        float[][] inputs = new float[members][n];
        for (float[] input : inputs) {
            for (int i = 0; i < n; i++) {
                input[i] = (float) rng.nextGaussian();
            }
        }
        return inputs;
    }

    /** Runs one round on every rank at once; returns each rank's bucket and fills the bytes each sent. */
    private static float[][] reduceOnAll(InProcessComms comms, ScatteredReduction[] reductions, float[][] inputs,
                                         long round, long[] sent) throws Exception {
        int members = reductions.length;
        int n = inputs[0].length;
        float[][] results = new float[members][];
        List<CompletableFuture<Void>> running = new ArrayList<>();
        for (int r = 0; r < members; r++) {
            int rank = r;
            running.add(CompletableFuture.runAsync(() -> {
                UnsafeBuffer bucket = new UnsafeBuffer(ByteBuffer.allocateDirect(4 * n));
                for (int i = 0; i < n; i++) {
                    bucket.putFloat(4 * i, inputs[rank][i]);
                }
                long before = comms.get(rank).dataBytesSent();
                reductions[rank].reduce(comms.get(rank).world(), bucket, round);
                sent[rank] = comms.get(rank).dataBytesSent() - before;
                results[rank] = new float[n];
                for (int i = 0; i < n; i++) {
                    results[rank][i] = bucket.getFloat(4 * i);
                }
            }));
        }
        for (CompletableFuture<Void> f : running) {
            f.get(60, TimeUnit.SECONDS);
        }
        return results;
    }

    private static void assertBits(float[] expected, float[] actual, String what) {
        for (int i = 0; i < expected.length; i++) {
            assertEquals(Float.floatToIntBits(expected[i]), Float.floatToIntBits(actual[i]), what + ", element " + i);
        }
    }

    /**
     * In a first round (no residuals) each element is off the exact sum by at most one quantisation step of each
     * member's bucket and one of the owner's summed bucket.
     */
    private static void assertWithinQuantisation(float[][] inputs, float[] result, int from, int to, int bucket,
                                                 int levels) {
        for (int start = from; start < to; start += bucket) {
            int end = Math.min(to, start + bucket);
            double bound = 0;
            double sumScale = 0;
            for (float[] input : inputs) {
                double scale = 0;
                for (int i = start; i < end; i++) {
                    scale = Math.max(scale, Math.abs(input[i]));
                }
                bound += scale / levels;
                sumScale += scale;
            }
            bound += sumScale / levels; // the summed chunk's scale is at most the members' scales added
            for (int i = start; i < end; i++) {
                double exact = 0;
                for (float[] input : inputs) {
                    exact += input[i];
                }
                assertTrue(Math.abs(result[i] - exact) <= bound * (1 + 1e-5), "element " + i + ": " + result[i]
                        + " vs " + exact + ", bound " + bound);
            }
        }
    }

    /** Per bucket element, what all the members' residuals and all the owners' residuals still owe the sum. */
    private static double[] owed(List<BucketLayer> layers, Encoder[] encoders, ScatteredReduction[] reductions) {
        int members = reductions.length;
        BucketLayer last = layers.get(layers.size() - 1);
        double[] owed = new double[last.index() + last.n()];
        for (int r = 0; r < members; r++) {
            MutableDirectBuffer residual = reductions[r].state().get("residual");
            MutableDirectBuffer owner = reductions[r].state().get("owner_residual");
            int at = 0;
            int ownerAt = 0;
            for (int l = 0; l < layers.size(); l++) {
                if (encoders[l] == null) {
                    continue;
                }
                BucketLayer layer = layers.get(l);
                for (int i = 0; i < layer.n(); i++) {
                    owed[layer.index() + i] += residual.getFloat(4 * (at + i));
                }
                at += layer.n();
                int[] cuts = ScatteredReduction.cuts(layer.n(), ((Qsgd) encoders[l]).bucket(), members);
                for (int i = cuts[r]; i < cuts[r + 1]; i++) {
                    owed[layer.index() + i] += owner.getFloat(4 * ownerAt++);
                }
            }
        }
        return owed;
    }

    /**
     * The two stages by hand, with the same encoders and seeds: member r's chunk m of layer l is encoded with
     * {@code Seeds.ofChunk(Seeds.of(seed, round, l, r), 0, m)}, owner m's re-encoding with
     * {@code Seeds.ofChunk(Seeds.of(seed, round, l, m), 1, m)}. Keeps the residuals in bucket coordinates and the
     * bytes of every chunk, from which the transport's count follows.
     */
    private static final class Reference {

        private final List<BucketLayer> layers;
        private final Encoder[] encoders;
        private final int members;
        private final float[][] residual;      // per member, per bucket element
        private final float[] ownerResidual;   // per bucket element (each has one owner)
        private final int[][][] phase1;        // bytes of member r's chunk m of layer l: [r][m][l]
        private final int[][] phase2;          // bytes of owner m's chunk of layer l: [m][l]

        Reference(List<BucketLayer> layers, Encoder[] encoders, int members, int n) {
            this.layers = layers;
            this.encoders = encoders;
            this.members = members;
            this.residual = new float[members][n];
            this.ownerResidual = new float[n];
            this.phase1 = new int[members][members][layers.size()];
            this.phase2 = new int[members][layers.size()];
        }

        float[] round(float[][] inputs, long round) {
            float[] out = new float[ownerResidual.length];
            for (int l = 0; l < layers.size(); l++) {
                BucketLayer layer = layers.get(l);
                int index = layer.index();
                Encoder encoder = encoders[l];
                int[] cuts = ScatteredReduction.cuts(layer.n(), encoder instanceof Qsgd q ? q.bucket() : 1,
                        members);
                for (int m = 0; m < members; m++) {
                    int start = cuts[m];
                    int length = cuts[m + 1] - start;
                    if (encoder == null) {
                        for (int i = 0; i < length; i++) {
                            float sum = 0;
                            for (int r = 0; r < members; r++) {
                                sum += inputs[r][index + start + i];
                            }
                            out[index + start + i] = sum;
                        }
                        for (int r = 0; r < members; r++) {
                            phase1[r][m][l] = 4 * length;
                        }
                        phase2[m][l] = 4 * length;
                        continue;
                    }
                    if (length == 0) {
                        for (int r = 0; r < members; r++) {
                            phase1[r][m][l] = 0;
                        }
                        phase2[m][l] = 0;
                        continue;
                    }
                    UnsafeBuffer sum = new UnsafeBuffer(new byte[4 * length]);
                    UnsafeBuffer encoded = new UnsafeBuffer(new byte[encoder.maxEncodedBytes(length)]);
                    UnsafeBuffer kept = new UnsafeBuffer(new byte[4 * length]);
                    for (int r = 0; r < members; r++) {
                        UnsafeBuffer a = new UnsafeBuffer(new byte[4 * length]);
                        for (int i = 0; i < length; i++) {
                            a.putFloat(4 * i, inputs[r][index + start + i] + residual[r][index + start + i]);
                        }
                        int written = encoder.encode(a, 0, length, encoded, 0,
                                Seeds.ofChunk(Seeds.of(SEED, round, l, r), 0, m));
                        ErrorFeedback.keepResidual(encoder, a, 0, length, encoded, 0, written, kept, 0);
                        for (int i = 0; i < length; i++) {
                            residual[r][index + start + i] = kept.getFloat(4 * i);
                        }
                        encoder.decodeAdd(encoded, 0, written, 1f, sum, 0, length);
                        phase1[r][m][l] = written;
                    }
                    for (int i = 0; i < length; i++) {
                        sum.putFloat(4 * i, sum.getFloat(4 * i) + ownerResidual[index + start + i]);
                    }
                    int written = encoder.encode(sum, 0, length, encoded, 0,
                            Seeds.ofChunk(Seeds.of(SEED, round, l, m), 1, m));
                    ErrorFeedback.keepResidual(encoder, sum, 0, length, encoded, 0, written, kept, 0);
                    UnsafeBuffer decoded = new UnsafeBuffer(new byte[4 * length]);
                    encoder.decodeAdd(encoded, 0, written, 1f, decoded, 0, length);
                    for (int i = 0; i < length; i++) {
                        ownerResidual[index + start + i] = kept.getFloat(4 * i);
                        out[index + start + i] = decoded.getFloat(4 * i);
                    }
                    phase2[m][l] = written;
                }
            }
            return out;
        }

        /** Member r's encoded bytes in the last round's first stage (what its observer is told). */
        int phase1Bytes(int r) {
            int bytes = 0;
            for (int m = 0; m < members; m++) {
                for (int l = 0; l < layers.size(); l++) {
                    bytes += encoders[l] == null ? 0 : phase1[r][m][l];
                }
            }
            return bytes;
        }

        /**
         * Member r's data bytes at the transport in the last round: its block for each peer in one frame (an empty
         * block still sends an empty frame), then its owned block to each peer in one frame (nothing if empty).
         */
        long expectedBytesSent(int r) {
            long bytes = 0;
            for (int p = 0; p < members; p++) {
                if (p != r) {
                    bytes += HEADER + sum(phase1[r][p]);
                }
            }
            int owned = sum(phase2[r]);
            return bytes + (owned == 0 ? 0 : (long) (members - 1) * (HEADER + owned));
        }

        private static int sum(int[] values) {
            int sum = 0;
            for (int v : values) {
                sum += v;
            }
            return sum;
        }
    }
}
