package dev.tessera.comm;

import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Oracle 4 of ALGORITHMS.md (MoE): the hierarchical all-to-all leaves the same bytes as the flat one, for W = 8
 * split as (P, g) in {(1,8), (2,4), (4,2), (8,1)}, even and uneven, float32 and float64. Eight communicators in
 * this JVM on one driver, one thread per rank. Payloads are random bytes (every bit pattern, NaNs included: an
 * all-to-all only moves bytes), and each output starts as the same random garbage, so bytes the operation must
 * not touch are compared too.
 */
class HierarchicalAllToAllTest {

    static final int W = 8;
    static final String JOB = "hier" + ProcessHandle.current().pid();
    private static InProcessComms comms;
    private static ExecutorService ranks;

    @BeforeAll
    static void connect() throws Exception {
        comms = InProcessComms.connect(JOB, W, 60000 + (int) (ProcessHandle.current().pid() % 500) * W);
        ranks = Executors.newFixedThreadPool(W);
    }

    @AfterAll
    static void close() {
        ranks.shutdownNow();
        comms.close();
    }

    @ParameterizedTest(name = "ranksPerNode {0}")
    @ValueSource(ints = {8, 4, 2, 1})
    void hierarchicalEqualsFlatBitForBit(int ranksPerNode) throws Exception {
        onEveryRank(rank -> {
            Communicator comm = comms.get(rank);
            ProcessGroup world = comm.world();
            HierarchicalAllToAll hier = new HierarchicalAllToAll(comm, world, ranksPerNode);
            assertEquals(W / ranksPerNode, hier.nodes());
            // Rounds of growing and shrinking sizes: staging grows, then is reused.
            int round = 0;
            for (int blockElements : new int[] {3, 40, 1, 17}) {
                for (DType dtype : new DType[] {DType.FLOAT32, DType.FLOAT64}) {
                    long seed = 1000L * ranksPerNode + 10L * round++;
                    compareEven(world, hier, dtype, blockElements, seed + rank);
                    compareUneven(world, hier, dtype, blockElements, seed);
                }
            }
        });
    }

    /** A parent other than the world, with its members in another order: its own sub-groups, ranks mapped. */
    @Test
    void hierarchicalOnAReorderedParentGroupEqualsItsFlatOne() throws Exception {
        int[] reversed = {7, 6, 5, 4, 3, 2, 1, 0};
        onEveryRank(rank -> {
            Communicator comm = comms.get(rank);
            ProcessGroup parent = comm.group("reversed", reversed);
            HierarchicalAllToAll onWorld = new HierarchicalAllToAll(comm, comm.world(), 2);
            HierarchicalAllToAll onParent = new HierarchicalAllToAll(comm, parent, 2);
            compareEven(parent, onParent, DType.FLOAT32, 5, 77 + rank);
            compareUneven(parent, onParent, DType.FLOAT64, 6, 78);
            compareUneven(comm.world(), onWorld, DType.FLOAT32, 6, 79);
        });
    }

    @Test
    void ranksPerNodeThatDoesNotDivideTheGroupIsRefused() {
        Communicator comm = comms.get(0);
        for (int bad : new int[] {3, 0, -2, 16}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new HierarchicalAllToAll(comm, comm.world(), bad));
            assertTrue(e.getMessage().contains("ranksPerNode " + bad) && e.getMessage().contains("8 members"),
                    e.getMessage());
        }
    }

    // ---------------------------------------------------------------- the comparisons

    private static void compareEven(ProcessGroup group, HierarchicalAllToAll hier, DType dtype, int block,
                                    long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        UnsafeBuffer input = randomBuffer(W * block * dtype.size(), random);
        byte[] before = bytes(input);
        UnsafeBuffer flat = randomBuffer(W * block * dtype.size(), random);
        UnsafeBuffer twoHop = copyOf(flat);
        group.allToAll(input, flat, dtype);
        hier.allToAll(input, twoHop, dtype);
        String what = "even all-to-all " + dtype + " x" + block + " on member " + group.rank() + " of " + group.name()
                + ", ranksPerNode " + hier.ranksPerNode();
        assertArrayEquals(bytes(flat), bytes(twoHop), what);
        assertArrayEquals(before, bytes(input), what + ": the input changed");
    }

    /**
     * Every rank draws the same W x W split matrix from {@code seed} (about one block in four empty) and takes its
     * row as input splits and its column as output splits; buffers have slack past the splits.
     */
    private static void compareUneven(ProcessGroup group, HierarchicalAllToAll hier, DType dtype, int maxBlock,
                                      long seed) {
        SplittableRandom shared = new SplittableRandom(seed);
        long[][] matrix = new long[W][W];
        for (long[] row : matrix) {
            for (int j = 0; j < W; j++) {
                row[j] = shared.nextInt(4) == 0 ? 0 : 1 + shared.nextInt(maxBlock);
            }
        }
        int me = group.rank();
        long[] inputSplits = matrix[me].clone();
        long[] outputSplits = new long[W];
        for (int i = 0; i < W; i++) {
            outputSplits[i] = matrix[i][me];
        }
        SplittableRandom random = new SplittableRandom(seed * 31 + me);
        UnsafeBuffer input = randomBuffer((int) ((Arrays.stream(inputSplits).sum() + 3) * dtype.size()), random);
        byte[] before = bytes(input);
        UnsafeBuffer flat = randomBuffer((int) ((Arrays.stream(outputSplits).sum() + 5) * dtype.size()), random);
        UnsafeBuffer twoHop = copyOf(flat);
        group.allToAll(input, inputSplits, flat, outputSplits, dtype);
        hier.allToAll(input, inputSplits, twoHop, outputSplits, dtype);
        String what = "uneven all-to-all " + dtype + " " + Arrays.toString(inputSplits) + " on member " + me + " of "
                + group.name() + ", ranksPerNode " + hier.ranksPerNode();
        assertArrayEquals(bytes(flat), bytes(twoHop), what);
        assertArrayEquals(before, bytes(input), what + ": the input changed");
    }

    // ---------------------------------------------------------------- helpers

    interface RankBody {
        void run(int rank) throws Exception;
    }

    /** Runs {@code body} for every rank at once, each on its own thread; the first failure is rethrown. */
    private static void onEveryRank(RankBody body) throws Exception {
        List<Future<?>> running = new ArrayList<>();
        for (int r = 0; r < W; r++) {
            int rank = r;
            running.add(ranks.submit(() -> {
                body.run(rank);
                return null;
            }));
        }
        for (Future<?> f : running) {
            f.get(120, TimeUnit.SECONDS);
        }
    }

    private static UnsafeBuffer randomBuffer(int bytes, SplittableRandom random) {
        UnsafeBuffer b = new UnsafeBuffer(ByteBuffer.allocateDirect(bytes));
        for (int i = 0; i < bytes; i++) {
            b.putByte(i, (byte) random.nextInt(256));
        }
        return b;
    }

    private static UnsafeBuffer copyOf(UnsafeBuffer b) {
        UnsafeBuffer copy = new UnsafeBuffer(ByteBuffer.allocateDirect(b.capacity()));
        copy.putBytes(0, b, 0, b.capacity());
        return copy;
    }

    private static byte[] bytes(UnsafeBuffer b) {
        byte[] out = new byte[b.capacity()];
        b.getBytes(0, out);
        return out;
    }
}
