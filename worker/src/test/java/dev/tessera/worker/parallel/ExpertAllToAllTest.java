package dev.tessera.worker.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.comm.HierarchicalAllToAll;
import dev.tessera.comm.InProcessComms;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.worker.model.Activations;
import dev.tessera.worker.model.ExpertShard;
import dev.tessera.worker.model.MoE;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.Routing;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * One MoE layer on four ranks in this JVM (one real media driver, symmetric memory), each holding two of eight
 * experts, against the layer holding all eight on each rank's own tokens. The exchange in one piece, overlapped in a
 * chunk per held expert, and overlapped in two hops give the same bits: outputs, input gradients and the held
 * experts' weight gradients.
 */
class ExpertAllToAllTest {

    private static final int RANKS = 4;
    private static final int TOKENS = 24;
    private static final int DIM = 8;
    private static InProcessComms comms;
    private static ExecutorService threads;
    private static final HierarchicalAllToAll[] TWO_HOPS = new HierarchicalAllToAll[RANKS]; // made once per rank

    @BeforeAll
    static void connect() throws Exception {
        comms = InProcessComms.connect("experta2a" + ProcessHandle.current().pid(), RANKS,
                48000 + (int) (ProcessHandle.current().pid() % 500) * RANKS);
        threads = Executors.newFixedThreadPool(RANKS);
    }

    @AfterAll
    static void close() {
        threads.shutdownNow();
        comms.close();
    }

    /** What one rank's layer gave: out, dx, and the gradients of the experts it holds. */
    private record Result(double[] out, double[] dx, double[] expertGrads) {
    }

    /** How the rows travel: in one piece or overlapped, flat or in two hops (nodes of two ranks). */
    private enum Trip {
        WHOLE, OVERLAPPED, OVERLAPPED_TWO_HOPS
    }

    private static ModelConfig config(String gate) {
        int k = gate.equals("switch") ? 1 : 2;
        // capacity factor 1.0 under switch: a capacity below the tokens, so the fixed layout travels, padding and all
        return new ModelConfig(11, DIM, 1, 2, 12, 8, k, 1, 6, 10000.0, 1e-5, 0.01, 64)
                .withRouting(new Routing(gate, gate.equals("switch") ? 1.0 : 1.25, 2.0, 0, 0));
    }

    @ParameterizedTest
    @ValueSource(strings = {"topk", "switch"})
    void overlappedTripsGiveTheSameBitsAsTheWholeOne(String gate) throws Exception {
        ModelConfig cfg = config(gate);
        Result[][] byTrip = new Result[Trip.values().length][];
        for (Trip trip : Trip.values()) {
            byTrip[trip.ordinal()] = onEveryRank(rank -> expertParallel(cfg, rank, trip));
        }
        for (int r = 0; r < RANKS; r++) {
            Result local = holdingEveryExpert(cfg, r);
            Result whole = byTrip[Trip.WHOLE.ordinal()][r];
            assertClose(local.out(), whole.out(), "out of rank " + r);
            assertClose(local.dx(), whole.dx(), "dx of rank " + r);
            for (Trip trip : new Trip[] {Trip.OVERLAPPED, Trip.OVERLAPPED_TWO_HOPS}) {
                Result other = byTrip[trip.ordinal()][r];
                assertArrayEquals(whole.out(), other.out(), trip + " out of rank " + r);
                assertArrayEquals(whole.dx(), other.dx(), trip + " dx of rank " + r);
                assertArrayEquals(whole.expertGrads(), other.expertGrads(), trip + " expert gradients of rank " + r);
            }
            assertTrue(java.util.Arrays.stream(whole.expertGrads()).anyMatch(g -> g != 0),
                    "rank " + r + "'s experts got rows");
        }
    }

    /** Rank {@code rank}'s share of the experts, its tokens travelling to their owners as {@code trip} says. */
    private static Result expertParallel(ModelConfig cfg, int rank, Trip trip) {
        ProcessGroup world = comms.get(rank).world();
        int held = cfg.nExperts() / RANKS;
        ExpertShard shard = new ExpertShard(rank * held, held);
        ParameterStore ps = parameters(cfg, shard);
        MoE moe = new MoE(ps, "m", cfg, TOKENS, Activations.own(), shard);
        if (trip == Trip.OVERLAPPED_TWO_HOPS && TWO_HOPS[rank] == null) {
            TWO_HOPS[rank] = new HierarchicalAllToAll(comms.get(rank), world, 2);
        }
        HierarchicalAllToAll twoHop = trip == Trip.OVERLAPPED_TWO_HOPS ? TWO_HOPS[rank] : null;
        moe.useTokenDispatch(new ExpertAllToAll(world, twoHop, shard, DIM, DataType.DOUBLE,
                moe.maxExchangeRows(RANKS), trip != Trip.WHOLE));
        Result result = run(moe, ps, rank);
        double[] grads = new double[0];
        for (int e = shard.first(); e < shard.end(); e++) {
            for (String w : new String[] {"w1", "w3", "w2"}) {
                grads = concat(grads, ps.grad("m.experts." + e + "." + w + ".weight").ravel().toDoubleVector());
            }
        }
        return new Result(result.out(), result.dx(), grads);
    }

    private static Result holdingEveryExpert(ModelConfig cfg, int rank) {
        ExpertShard all = ExpertShard.all(cfg.nExperts());
        ParameterStore ps = parameters(cfg, all);
        return run(new MoE(ps, "m", cfg, TOKENS, Activations.own(), all), ps, rank);
    }

    /** Forward and backward on rank {@code rank}'s tokens (the same on every trip). */
    private static Result run(MoE moe, ParameterStore ps, int rank) {
        SplittableRandom rng = new SplittableRandom(100 + rank);
        INDArray x = random(rng, TOKENS, DIM);
        INDArray dOut = random(rng, TOKENS, DIM);
        INDArray out = Nd4j.zeros(DataType.DOUBLE, TOKENS, DIM);
        INDArray dx = Nd4j.zeros(DataType.DOUBLE, TOKENS, DIM);
        ps.zeroGrads();
        moe.forward(x, out);
        moe.backward(x, dOut, dx, 0.01);
        return new Result(out.ravel().toDoubleVector(), dx.ravel().toDoubleVector(), null);
    }

    /** Every tensor drawn from a seed of its own name, so a rank holding some experts has the same values. */
    private static ParameterStore parameters(ModelConfig cfg, ExpertShard held) {
        ParameterStore.Builder b = ParameterStore.builder();
        MoE.register(b, "m", cfg, held);
        ParameterStore ps = b.build(DataType.DOUBLE);
        for (ParameterStore.Tensor t : ps.tensors()) {
            INDArray p = ps.param(t.name());
            SplittableRandom rng = new SplittableRandom(t.name().hashCode());
            for (long i = 0; i < p.length(); i++) {
                p.putScalar(i, 0.5 * rng.nextGaussian());
            }
        }
        return ps;
    }

    private static INDArray random(SplittableRandom rng, int rows, int cols) {
        INDArray a = Nd4j.create(DataType.DOUBLE, rows, cols);
        for (long i = 0; i < a.length(); i++) {
            a.putScalar(i, rng.nextGaussian());
        }
        return a;
    }

    private static double[] concat(double[] a, double[] b) {
        double[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    /** The layer alone runs each expert on fewer rows, which may round differently in the last place. */
    private static void assertClose(double[] expected, double[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 1e-12 * Math.max(1, Math.abs(expected[i])), what + " [" + i + "]");
        }
    }

    private interface RankWork {
        Result run(int rank) throws Exception;
    }

    private static Result[] onEveryRank(RankWork work) throws Exception {
        List<Future<Result>> futures = new ArrayList<>();
        for (int r = 0; r < RANKS; r++) {
            int rank = r;
            futures.add(threads.submit(() -> work.run(rank)));
        }
        Result[] results = new Result[RANKS];
        for (int r = 0; r < RANKS; r++) {
            results[r] = futures.get(r).get(60, TimeUnit.SECONDS);
        }
        return results;
    }
}
