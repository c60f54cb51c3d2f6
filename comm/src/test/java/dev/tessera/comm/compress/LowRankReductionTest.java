package dev.tessera.comm.compress;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.comm.InProcessComms;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * PowerSGD's reduction with L-GreCo's rank switches, on two members over real Aeron in this JVM: after a switch at a
 * round boundary both members hold the same bits (sums and warm-start Qs), fewer bytes cross the wire at a lower
 * rank, the observer sees each low-rank layer's {@code M = g + e}, and a checkpoint taken after a switch resumes bit
 * for bit once the ranks are restored before the Qs are loaded.
 */
class LowRankReductionTest {

    private static final int MEMBERS = 2;
    private static final List<BucketLayer> LAYERS = List.of(new BucketLayer("w1", 0, 24, 20),
            new BucketLayer("bias", 480, 7, 1), new BucketLayer("w2", 487, 16, 30));
    private static final int N = 967;
    private static final int[] UNIFORM = {4, 0, 4};
    private static final long SEED = 17;

    private static InProcessComms comms;
    private static ExecutorService threads;

    @BeforeAll
    static void connect() throws Exception {
        comms = InProcessComms.connect("lowrank-" + ProcessHandle.current().pid(), MEMBERS,
                49000 + (int) (ProcessHandle.current().pid() % 400) * MEMBERS);
        threads = Executors.newFixedThreadPool(MEMBERS);
    }

    @AfterAll
    static void close() {
        threads.shutdownNow();
        comms.close();
    }

    @Test
    void aRankSwitchKeepsTheMembersBitIdenticalAndSendsLessAtALowerRank() throws Exception {
        List<List<Integer>> seen = new ArrayList<>();
        LowRankReduction[] members = new LowRankReduction[MEMBERS];
        for (int r = 0; r < MEMBERS; r++) {
            List<Integer> mine = new ArrayList<>();
            seen.add(mine);
            members[r] = new LowRankReduction(LAYERS, UNIFORM, MEMBERS, SEED, new LayerObserver() {
                @Override
                public void beforeEncode(int layer, DirectBuffer values, int index, int n) {
                    assertEquals(LAYERS.get(layer).index(), index);
                    assertEquals(LAYERS.get(layer).n(), n);
                    mine.add(layer);
                }
            });
        }
        long[] uniformBytes = new long[MEMBERS];
        float[][] sums = round(members, 0, uniformBytes);
        assertArrayEquals(sums[0], sums[1]);
        assertEquals(List.of(0, 2), seen.get(0), "the observer sees the low-rank layers, not the raw one");

        for (LowRankReduction member : members) { // the boundary: every member switches the same way
            member.useRank(0, 1);
            member.useRank(2, 2);
        }
        assertEquals(1, members[0].rank(0));
        assertEquals(2, members[0].rank(2));
        assertEquals(0, members[0].rank(1));
        long[] lowerBytes = new long[MEMBERS];
        for (long round = 1; round <= 2; round++) {
            sums = round(members, round, lowerBytes);
            assertArrayEquals(sums[0], sums[1], "round " + round);
            assertStatesEqual(members[0].state(), members[1].state(), false);
        }
        assertEquals(20 * 1 * 4, members[0].state().get("q.0").capacity(), "Q of the rank in force");
        assertTrue(lowerBytes[0] / 2 < uniformBytes[0], "rank 1 and 2 send " + lowerBytes[0] / 2
                + " bytes a round, rank 4 " + uniformBytes[0]);

        for (LowRankReduction member : members) { // and back up past the uniform rank: Q gains seeded columns
            member.useRank(0, 8);
            member.useRank(2, 8);
        }
        sums = round(members, 3, new long[MEMBERS]);
        assertArrayEquals(sums[0], sums[1]);
        assertStatesEqual(members[0].state(), members[1].state(), false);
        assertEquals(8, members[1].rank(2));
    }

    @Test
    void aCheckpointAfterASwitchResumesBitIdenticallyWhenTheRanksAreRestoredFirst() throws Exception {
        LowRankReduction[] running = new LowRankReduction[MEMBERS];
        for (int r = 0; r < MEMBERS; r++) {
            running[r] = new LowRankReduction(LAYERS, UNIFORM, MEMBERS, SEED);
        }
        round(running, 0, new long[MEMBERS]);
        for (LowRankReduction member : running) {
            member.useRank(0, 2);
            member.useRank(2, 8);
        }
        round(running, 1, new long[MEMBERS]);
        List<Map<String, float[]>> saved = new ArrayList<>();
        for (LowRankReduction member : running) {
            saved.add(copy(member.state()));
        }
        float[][] continued = round(running, 2, new long[MEMBERS]);

        LowRankReduction[] resumed = new LowRankReduction[MEMBERS];
        for (int r = 0; r < MEMBERS; r++) {
            resumed[r] = new LowRankReduction(LAYERS, UNIFORM, MEMBERS, SEED);
            assertNotEquals(saved.get(r).get("q.2").length * 4, resumed[r].state().get("q.2").capacity(),
                    "at the uniform rank the saved Q does not fit: the ranks must come first");
            resumed[r].useRank(0, 2);
            resumed[r].useRank(2, 8);
            load(saved.get(r), resumed[r].state());
        }
        float[][] after = round(resumed, 2, new long[MEMBERS]);
        for (int r = 0; r < MEMBERS; r++) {
            assertArrayEquals(continued[r], after[r], "member " + r);
            assertStatesEqual(running[r].state(), resumed[r].state(), true);
        }
    }

    /** One round on every member (its own inputs per round and member); the bytes each sent are added up. */
    private static float[][] round(LowRankReduction[] members, long round, long[] sentBytes) throws Exception {
        float[][] results = new float[MEMBERS][N];
        List<Future<?>> running = new ArrayList<>();
        for (int r = 0; r < MEMBERS; r++) {
            int rank = r;
            running.add(threads.submit(() -> {
                UnsafeBuffer bucket = new UnsafeBuffer(ByteBuffer.allocateDirect(4 * N));
                SplittableRandom rng = new SplittableRandom(1000 * round + rank);
                for (int i = 0; i < N; i++) {
                    bucket.putFloat(4 * i, (float) rng.nextGaussian());
                }
                long before = comms.get(rank).dataBytesSent();
                members[rank].reduce(comms.get(rank).world(), bucket, round);
                sentBytes[rank] += comms.get(rank).dataBytesSent() - before;
                for (int i = 0; i < N; i++) {
                    results[rank][i] = bucket.getFloat(4 * i);
                }
            }));
        }
        for (Future<?> f : running) {
            f.get(60, TimeUnit.SECONDS);
        }
        return results;
    }

    private static Map<String, float[]> copy(Map<String, MutableDirectBuffer> state) {
        Map<String, float[]> copy = new LinkedHashMap<>();
        state.forEach((name, buffer) -> {
            float[] values = new float[buffer.capacity() / 4];
            for (int i = 0; i < values.length; i++) {
                values[i] = buffer.getFloat(4 * i);
            }
            copy.put(name, values);
        });
        return copy;
    }

    private static void load(Map<String, float[]> saved, Map<String, MutableDirectBuffer> into) {
        assertEquals(saved.keySet(), into.keySet());
        saved.forEach((name, values) -> {
            MutableDirectBuffer buffer = into.get(name);
            assertEquals(4 * values.length, buffer.capacity(), name);
            for (int i = 0; i < values.length; i++) {
                buffer.putFloat(4 * i, values[i]);
            }
        });
    }

    /** The Qs, and with {@code residuals} the residual (a member's own, so only compared with itself). */
    private static void assertStatesEqual(Map<String, MutableDirectBuffer> a, Map<String, MutableDirectBuffer> b,
                                          boolean residuals) {
        Map<String, float[]> x = copy(a);
        Map<String, float[]> y = copy(b);
        assertEquals(x.keySet(), y.keySet());
        x.forEach((name, values) -> {
            if (residuals || !name.equals("residual")) {
                assertArrayEquals(values, y.get(name), name);
            }
        });
    }
}
