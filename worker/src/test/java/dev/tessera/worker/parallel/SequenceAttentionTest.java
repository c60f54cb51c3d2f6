package dev.tessera.worker.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.comm.InProcessComms;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.worker.model.Activations;
import dev.tessera.worker.model.AttentionCore;
import dev.tessera.worker.model.SequenceAttention;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BiFunction;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * ALGORITHMS.md 8, oracle 1: each sequence-parallel scheme, on N ranks in this JVM over real Aeron and symmetric
 * memory, gives every rank the single-process causal attention of its queries, and in backward the gradients of its
 * q, k and v, in float64 to 1e-12. The single process is {@link AttentionCore} over the whole sequence.
 */
class SequenceAttentionTest {

    private static final int BATCH = 2;
    private static final int HEADS = 12; // divisible by 2, 3 and 4: Ulysses
    private static final int HEAD_DIM = 8;
    private static final int SEQ = 24;   // cuts into 2N zig-zag chunks for N = 2, 3, 4

    @Test
    void allGatherOfKeysAndValuesIsExactForTwoThreeAndFourRanks() throws Exception {
        for (int n = 2; n <= 4; n++) {
            for (SequencePlacement placement : SequencePlacement.values()) {
                assertExact("allgather", n, placement, DataType.DOUBLE, 1e-12, AllGatherKvAttention::factory);
            }
        }
    }

    @Test
    void ulyssesIsExactForTwoThreeAndFourRanks() throws Exception {
        for (int n = 2; n <= 4; n++) {
            for (SequencePlacement placement : SequencePlacement.values()) {
                assertExact("ulysses", n, placement, DataType.DOUBLE, 1e-12, UlyssesAttention::factory);
            }
        }
    }

    @Test
    void ringAttentionIsExactForTwoThreeAndFourRanks() throws Exception {
        for (int n = 2; n <= 4; n++) {
            for (SequencePlacement placement : SequencePlacement.values()) {
                assertExact("ring", n, placement, DataType.DOUBLE, 1e-12, RingKvAttention::factory);
            }
        }
    }

    @Test
    void float32SchemesFollowTheSingleProcessToRounding() throws Exception {
        assertExact("allgather", 2, SequencePlacement.ZIGZAG, DataType.FLOAT, 2e-6, AllGatherKvAttention::factory);
        assertExact("ulysses", 3, SequencePlacement.CONTIGUOUS, DataType.FLOAT, 2e-6, UlyssesAttention::factory);
        assertExact("ring", 4, SequencePlacement.ZIGZAG, DataType.FLOAT, 2e-6, RingKvAttention::factory);
    }

    /** Runs {@code scheme} on n ranks and compares each rank's y, dq, dk, dv with the single process's rows. */
    static void assertExact(String scheme, int n, SequencePlacement placement, DataType dt, double tolerance,
                            BiFunction<ProcessGroup, int[][], SequenceAttention.Factory> factory) throws Exception {
        int bh = BATCH * HEADS;
        Nd4j.getRandom().setSeed(1234 + n);
        INDArray q = Nd4j.randn(DataType.DOUBLE, bh, SEQ, HEAD_DIM).castTo(dt);
        INDArray k = Nd4j.randn(DataType.DOUBLE, bh, SEQ, HEAD_DIM).castTo(dt);
        INDArray v = Nd4j.randn(DataType.DOUBLE, bh, SEQ, HEAD_DIM).castTo(dt);
        INDArray dy = Nd4j.randn(DataType.DOUBLE, bh, SEQ, HEAD_DIM).castTo(dt);
        INDArray[] whole = new INDArray[5];
        for (int i = 0; i < whole.length; i++) {
            whole[i] = Nd4j.create(dt, bh, SEQ, HEAD_DIM);
        }
        AttentionCore single = new AttentionCore(DataType.DOUBLE, bh, HEADS, SEQ, SEQ, HEAD_DIM, 0, 0, null);
        INDArray q64 = q.castTo(DataType.DOUBLE);
        INDArray k64 = k.castTo(DataType.DOUBLE);
        INDArray v64 = v.castTo(DataType.DOUBLE);
        INDArray[] ref = new INDArray[4];
        for (int i = 0; i < ref.length; i++) {
            ref[i] = Nd4j.create(DataType.DOUBLE, bh, SEQ, HEAD_DIM);
        }
        single.forward(q64, k64, v64, ref[0]);
        single.backward(q64, k64, v64, dy.castTo(DataType.DOUBLE), ref[1], ref[2], ref[3]);

        int[][] positions = new int[n][];
        for (int r = 0; r < n; r++) {
            positions[r] = placement.positions(SEQ, n, r);
        }
        String job = "seqattn" + ProcessHandle.current().pid() + scheme + n;
        int port = 53000 + (int) (ProcessHandle.current().pid() % 500) * 4 + n * 1000 % 3000;
        ExecutorService threads = Executors.newFixedThreadPool(n);
        try (InProcessComms comms = InProcessComms.connect(job, n, port)) {
            List<Future<INDArray[]>> results = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                int rank = r;
                results.add(threads.submit(() -> {
                    ProcessGroup group = DeviceMesh.create(comms.get(rank), new Mesh(1, n, 1)).sequenceParallel()
                            .process();
                    SequenceAttention attention = factory.apply(group, positions).create(dt, BATCH, HEADS, HEAD_DIM,
                            positions[rank].length, null, Activations.own());
                    INDArray ql = rows(q, positions[rank]);
                    INDArray kl = rows(k, positions[rank]);
                    INDArray vl = rows(v, positions[rank]);
                    INDArray[] out = new INDArray[4];
                    for (int i = 0; i < out.length; i++) {
                        out[i] = Nd4j.create(dt, bh, positions[rank].length, HEAD_DIM);
                    }
                    // Twice: a layer's buffers are reused step after step, and the second step must not see the first.
                    for (int step = 0; step < 2; step++) {
                        attention.forward(ql, kl, vl, out[0]);
                        attention.backward(ql, kl, vl, rows(dy, positions[rank]), out[1], out[2], out[3]);
                    }
                    return out;
                }));
            }
            for (int r = 0; r < n; r++) {
                INDArray[] out = results.get(r).get(60, TimeUnit.SECONDS);
                String[] names = {"y", "dq", "dk", "dv"};
                for (int i = 0; i < out.length; i++) {
                    double error = rows(ref[i], positions[r]).sub(out[i].castTo(DataType.DOUBLE)).amaxNumber()
                            .doubleValue();
                    assertTrue(error <= tolerance, scheme + " " + placement + " N=" + n + " rank " + r + " "
                            + names[i] + ": max abs error " + error);
                    assertFalse(Double.isNaN(out[i].sumNumber().doubleValue()));
                }
            }
            assertEquals(n, comms.size());
            comms.close();
            assertFalse(Files.exists(comms.directory()), "the media driver's directory is removed");
        } finally {
            threads.shutdownNow();
        }
    }

    /** a[:, positions, :] as a new [BH, positions.length, D] array. */
    static INDArray rows(INDArray a, int[] positions) {
        INDArray out = Nd4j.create(a.dataType(), a.size(0), positions.length, a.size(2));
        for (int t = 0; t < positions.length; t++) {
            out.get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.point(t),
                    org.nd4j.linalg.indexing.NDArrayIndex.all()).assign(a.get(
                    org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.point(positions[t]),
                    org.nd4j.linalg.indexing.NDArrayIndex.all()));
        }
        return out;
    }
}
