package dev.tessera.comm.compress;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.tessera.comm.InProcessComms;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

/**
 * Three ranks over real Aeron in this JVM: each member's decoded bucket is the sum of every member's encoding, the
 * same bits on every member, a raw layer is summed exactly, and the bytes each rank handed to Aeron are its
 * payload (once per peer, the one-hop all-gather of small payloads) plus the lengths, plus the frames' headers.
 */
class GatheredReductionTest {

    private static final int RANKS = 3;

    @Test
    void everyMemberEndsWithTheSumOfTheDecodedEncodings() throws Exception {
        List<BucketLayer> layers = List.of(new BucketLayer("w1", 0, 40, 50), new BucketLayer("bias", 2000, 7, 1),
                new BucketLayer("w2", 2007, 30, 30));
        int n = 2907;
        String job = "gathered-" + ProcessHandle.current().pid();
        try (InProcessComms comms = InProcessComms.connect(job, RANKS,
                51000 + (int) (ProcessHandle.current().pid() % 300) * RANKS)) {
            float[][] inputs = new float[RANKS][n];
            SplittableRandom rng = new SplittableRandom(5);
            for (float[] input : inputs) {
                for (int i = 0; i < n; i++) {
                    input[i] = (float) rng.nextGaussian();
                }
            }
            float[][] results = new float[RANKS][];
            long[] sentBytes = new long[RANKS];
            int[] payloads = new int[RANKS];
            List<CompletableFuture<Void>> running = new ArrayList<>();
            for (int r = 0; r < RANKS; r++) {
                int rank = r;
                running.add(CompletableFuture.runAsync(() -> {
                    Encoder[] encoders = {new TopK(0.05), null, new TopK(0.1)};
                    int[] bytes = new int[1];
                    LayerObserver count = new LayerObserver() {
                        @Override
                        public void encoded(int layer, int written, double error) {
                            bytes[0] += 4 + written;
                        }
                    };
                    GatheredReduction reduction = new GatheredReduction(layers, encoders, RANKS, 1, true, count);
                    UnsafeBuffer bucket = new UnsafeBuffer(ByteBuffer.allocateDirect(4 * n));
                    for (int i = 0; i < n; i++) {
                        bucket.putFloat(4 * i, inputs[rank][i]);
                    }
                    long before = comms.get(rank).dataBytesSent();
                    reduction.reduce(comms.get(rank).world(), bucket, 0);
                    sentBytes[rank] = comms.get(rank).dataBytesSent() - before;
                    payloads[rank] = bytes[0] + 4 * 7;
                    results[rank] = new float[n];
                    for (int i = 0; i < n; i++) {
                        results[rank][i] = bucket.getFloat(4 * i);
                    }
                }));
            }
            for (CompletableFuture<Void> f : running) {
                f.get(60, TimeUnit.SECONDS);
            }
            float[] expected = new float[n];
            for (int r = 0; r < RANKS; r++) {
                float[] decoded = new float[n];
                UnsafeBuffer one = new UnsafeBuffer(new byte[4 * n]);
                for (int i = 0; i < n; i++) {
                    one.putFloat(4 * i, inputs[r][i]);
                }
                UnsafeBuffer encoded = new UnsafeBuffer(new byte[1 << 16]);
                UnsafeBuffer out = new UnsafeBuffer(new byte[4 * n]);
                TopK first = new TopK(0.05);
                first.decodeAdd(encoded, 0, first.encode(one, 0, 2000, encoded, 0, 0), 1f, out, 0, 2000);
                TopK second = new TopK(0.1);
                second.decodeAdd(encoded, 0, second.encode(one, 2007, 900, encoded, 0, 0), 1f, out, 2007, 900);
                for (int i = 2000; i < 2007; i++) {
                    out.putFloat(4 * i, inputs[r][i]);
                }
                for (int i = 0; i < n; i++) {
                    decoded[i] = out.getFloat(4 * i);
                    expected[i] += decoded[i]; // rank order, as the reduction adds
                }
            }
            for (int r = 0; r < RANKS; r++) {
                for (int i = 0; i < n; i++) {
                    assertEquals(Float.floatToIntBits(expected[i]), Float.floatToIntBits(results[r][i]),
                            "rank " + r + " element " + i);
                }
                // Lengths: one 4-byte frame to each peer; payload: one frame to each peer (it fits one frame).
                long expectedBytes = (RANKS - 1) * (32 + 4) + (RANKS - 1) * (32L + payloads[r]);
                assertEquals(expectedBytes, sentBytes[r], "rank " + r + "'s bytes at the transport");
            }
        }
    }
}
