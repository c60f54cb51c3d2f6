package dev.tessera.optimizers.co2;

import static dev.tessera.optimizers.co2.Co2Rounds.floats;
import static dev.tessera.optimizers.co2.Co2Rounds.read;
import static dev.tessera.optimizers.co2.Co2Rounds.view;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.optimizers.ParamSpan;
import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.StateSlice;
import dev.tessera.optimizers.kernel.NativeMemory;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** ALGORITHMS.md §6 test oracles 1, 2 and 4, the momentum equations, and sharding, as pure logic. */
class Co2OuterStepTest {

    private static final Co2Config PLAIN = new Co2Config(1, 1.0, 0.0, 1.0, false, 1.0); // alpha=1 beta=0 lambda=1

    private static List<ParamSpan> oneSpan(int n) {
        return List.of(new ParamSpan("w", 0, n, new long[] {n}));
    }

    /** Three tensors over 11 elements: a 2x2 matrix, a vector of 5, a vector of 2. */
    private static final List<ParamSpan> THREE = List.of(
            new ParamSpan("a", 0, 4, new long[] {2, 2}),
            new ParamSpan("b", 4, 5, new long[] {5}),
            new ParamSpan("c", 9, 2, new long[] {2}));

    private static float[] state(Co2OuterStep outer, String name) {
        return read(outer.state().get(name).data());
    }

    // ---- the compressed path: the mean delta instead of the average ---------------------------------------

    /**
     * {@code applyDelta(x_prev - ybar)} is {@code apply(ybar)}, bit for bit with the constant penalty (the float
     * difference is the one apply forms), over rounds with momentum, clipping and three tensors.
     */
    @Test
    void applyingTheMeanDeltaIsApplyingTheAverage() {
        SplittableRandom rnd = new SplittableRandom(7);
        Co2Config config = new Co2Config(3, 0.7, 0.5, 2.0, true, 0.05);
        float[] init = new float[11];
        for (int k = 0; k < init.length; k++) {
            init[k] = (float) rnd.nextGaussian();
        }
        INDArray liveA = floats(init.clone());
        INDArray liveD = floats(init.clone());
        Co2OuterStep byAverage = new Co2OuterStep(liveA, THREE, config);
        Co2OuterStep byDelta = new Co2OuterStep(liveD, THREE, config);
        byAverage.begin();
        byDelta.begin();
        byAverage.skip();
        byDelta.skip();
        for (int t = 1; t < 6; t++) {
            float[] xPrev = state(byAverage, "co2.x_prev");
            float[] ybar = new float[11];
            float[] delta = new float[11];
            for (int k = 0; k < 11; k++) {
                ybar[k] = xPrev[k] - 0.1f * (float) rnd.nextGaussian();
                delta[k] = xPrev[k] - ybar[k];
            }
            byAverage.apply(view(floats(ybar)));
            byDelta.applyDelta(view(floats(delta)));
            for (String name : List.of("co2.x_prev", "co2.x", "co2.outer_momentum")) {
                assertArrayEquals(state(byAverage, name), state(byDelta, name), name + " after round " + t);
            }
        }
    }

    // ---- oracle 2: one-step delay --------------------------------------------------------------------------

    @Test
    void oracle2OneStepDelayWithToyInnerStep() {
        int n = 5;
        int rounds = 10;
        Co2Rounds.Local minusOne = (t, start, ybar) -> {
            for (int k = 0; k < n; k++) {
                ybar[k] = start[k] - 1f; // G = 1: the mean is the one worker's y = x - 1
            }
        };
        INDArray live = Nd4j.zeros(DataType.FLOAT, n); // x_0 = 0
        float[][] delayed = Co2Rounds.delayed(new Co2OuterStep(live, oneSpan(n), PLAIN), live, rounds, minusOne);

        INDArray liveSync = Nd4j.zeros(DataType.FLOAT, n);
        float[][] sync = Co2Rounds.synchronous(new Co2OuterStep(liveSync, oneSpan(n), PLAIN), liveSync, rounds,
                minusOne, (t, ybar) -> { });

        for (int k = 0; k < n; k++) {
            assertEquals(0f, delayed[0][k], "x_1 = x_0: round 0 has nothing to apply");
            assertEquals(-1f, delayed[1][k], "x_2 = x_1 - (x_0 - y_0)");
            for (int t = 1; t < rounds; t++) {
                assertEquals(delayed[t - 1][k] - 1f, delayed[t][k], "x_{t+1} = x_t - 1 for t >= 1, round " + t);
                assertEquals(-t, delayed[t][k]); // exact: small integers
            }
            for (int t = 0; t < rounds; t++) {
                assertEquals(-(t + 1), sync[t][k], "synchronous x_{t+1} = x_t - 1 from x_0 = 0");
            }
            for (int t = 1; t < rounds; t++) {
                assertEquals(sync[t - 1][k], delayed[t][k], "delayed x_{t+1} = synchronous x_t");
            }
        }
    }

    // ---- oracle 1: reduction to Local SGD and to data-parallel SGD -----------------------------------------

    /** G workers, worker i minimising 0.5 a_ik (x_k - c_ik)^2 per element with plain SGD, tau steps a round. */
    private record Quadratics(float[][] a, float[][] c, float lr, int tau) implements Co2Rounds.Local {
        static Quadratics random(SplittableRandom rnd, int workers, int n, float lr, int tau) {
            float[][] a = new float[workers][n];
            float[][] c = new float[workers][n];
            for (int i = 0; i < workers; i++) {
                for (int k = 0; k < n; k++) {
                    a[i][k] = (float) rnd.nextDouble(0.5, 2.0);
                    c[i][k] = (float) rnd.nextDouble(1.0, 2.0);
                }
            }
            return new Quadratics(a, c, lr, tau);
        }

        float grad(int i, int k, float x) {
            return a[i][k] * (x - c[i][k]);
        }

        /** Each worker's tau SGD steps from x_t, then the mean over workers in rank order, as float32. */
        @Override
        public void run(int round, float[] start, float[] ybar) {
            int workers = a.length;
            for (int k = 0; k < start.length; k++) {
                float sum = 0f;
                for (int i = 0; i < workers; i++) {
                    float y = start[k];
                    for (int s = 0; s < tau; s++) {
                        y = y - lr * grad(i, k, y);
                    }
                    sum += y;
                }
                ybar[k] = sum / workers;
            }
        }
    }

    @Test
    void oracle1SynchronousCo2IsLocalSgdBitForBit() {
        int n = 7;
        SplittableRandom rnd = new SplittableRandom(11);
        Quadratics workers = Quadratics.random(rnd, 3, n, 0.1f, 4);
        float[] x0 = new float[n];
        for (int k = 0; k < n; k++) {
            x0[k] = (float) rnd.nextDouble(1.0, 2.0);
        }
        INDArray live = floats(x0);
        Co2Config localSgd = new Co2Config(4, 1.0, 0.0, 1.0, false, 1.0);
        float[] before = x0.clone();
        Co2Rounds.synchronous(new Co2OuterStep(live, oneSpan(n), localSgd), live, 12, workers, (t, ybar) -> {
            float[] after = read(live);
            for (int k = 0; k < n; k++) {
                // x_{t+1} = x_t - (x_t - ybar_t) equals ybar_t exactly when x_t - ybar_t is exact: by Sterbenz's
                // lemma when ybar/2 <= x <= 2 ybar, which holds here (everything stays in [1, 2]). Otherwise the
                // difference rounds and x_{t+1} is within an ulp of ybar_t, not equal to it.
                assertTrue(ybar[k] / 2 <= before[k] && before[k] <= 2 * ybar[k], "Sterbenz's condition");
                assertTrue(before[k] != ybar[k], "the round must move the parameters for the check to mean anything");
                assertEquals(Float.floatToRawIntBits(ybar[k]), Float.floatToRawIntBits(after[k]),
                        "round " + t + " element " + k + ": x_{t+1} = ybar_t");
            }
            System.arraycopy(after, 0, before, 0, n);
        });
    }

    /**
     * tau = 1 with SGD inside: the mean of the workers' x - lr g_i is x - lr mean(g_i), synchronous data-parallel
     * SGD. The two are the same in real numbers and differ in float32 only by rounding: per round, the CO2 side
     * rounds lr*g_i, x - lr*g_i, two sums and a division, the data-parallel side two sums, a division, lr*g and
     * x - lr*g; about ten roundings of 2^-24 relative on values below 2, so under 1.2e-6 a round. The map
     * x -> x - lr*mean(a)*(x - c) contracts by (1 - lr*mean(a)) <= 0.95 per round, so the difference stays below
     * 1.2e-6 / 0.05 = 2.4e-5 however many rounds: the tolerance, 3e-5, is that bound.
     */
    @Test
    void oracle1WithOneLocalStepIsDataParallelSgd() {
        int n = 9;
        int workersCount = 3;
        SplittableRandom rnd = new SplittableRandom(5);
        Quadratics workers = Quadratics.random(rnd, workersCount, n, 0.1f, 1);
        float[] x0 = new float[n];
        for (int k = 0; k < n; k++) {
            x0[k] = (float) rnd.nextDouble(-1.0, 3.0);
        }
        INDArray live = floats(x0);
        float[] dp = x0.clone();
        Co2Rounds.synchronous(new Co2OuterStep(live, oneSpan(n), new Co2Config(1, 1.0, 0.0, 1.0, false, 1.0)),
                live, 150, workers, (t, ybar) -> {
                    for (int k = 0; k < n; k++) { // data-parallel SGD: all-reduce the gradients, one step
                        float sum = 0f;
                        for (int i = 0; i < workersCount; i++) {
                            sum += workers.grad(i, k, dp[k]);
                        }
                        dp[k] = dp[k] - workers.lr() * (sum / workersCount);
                    }
                    float[] co2 = read(live);
                    for (int k = 0; k < n; k++) {
                        assertEquals(dp[k], co2[k], 3e-5, "round " + t + " element " + k);
                    }
                });
        float[] end = read(live);
        for (int k = 0; k < n; k++) { // and it converged (0.95^150 < 1e-3) to the mean objective's minimiser
            double num = 0;
            double den = 0;
            for (int i = 0; i < workersCount; i++) {
                num += workers.a()[i][k] * workers.c()[i][k];
                den += workers.a()[i][k];
            }
            assertEquals(num / den, end[k], 1e-2);
        }
    }

    // ---- oracle 4: clipping clamps ---------------------------------------------------------------------------

    @Test
    void oracle4ClippedMomentumStaysWithinPhiAfterEveryOuterStep() {
        int n = 11;
        double phi = 1e-3;
        SplittableRandom rnd = new SplittableRandom(3);
        float[][] steps = new float[8][n];
        for (float[] row : steps) {
            for (int k = 0; k < n; k++) {
                row[k] = (float) rnd.nextDouble(-0.2, 0.2); // pseudo-gradients ~0.1, a hundred times phi
            }
        }
        Co2Rounds.Local local = (t, start, ybar) -> {
            for (int k = 0; k < n; k++) {
                ybar[k] = start[k] - steps[t][k];
            }
        };
        Co2Config clipped = new Co2Config(3, 1.0, 0.5, 1.0, true, phi);
        INDArray live = Nd4j.zeros(DataType.FLOAT, n);
        Co2OuterStep outer = new Co2OuterStep(live, THREE, clipped);
        boolean[] reached = {false};
        Co2Rounds.delayed(outer, live, steps.length, local, (t, ybar) -> {
            for (float mk : state(outer, "co2.outer_momentum")) {
                assertTrue(Math.abs((double) mk) <= phi, "round " + t + ": |m| = " + Math.abs(mk) + " > " + phi);
                reached[0] |= Math.abs(mk) == Co2OuterStep.roundedDown(phi);
            }
        });
        assertTrue(reached[0], "the clamp was active");

        INDArray liveFree = Nd4j.zeros(DataType.FLOAT, n);
        Co2OuterStep free = new Co2OuterStep(liveFree, THREE, new Co2Config(3, 1.0, 0.5, 1.0, false, phi));
        double[] maxFree = {0};
        Co2Rounds.delayed(free, liveFree, steps.length, local, (t, ybar) -> {
            for (float mk : state(free, "co2.outer_momentum")) {
                maxFree[0] = Math.max(maxFree[0], Math.abs(mk));
            }
        });
        assertTrue(maxFree[0] > 10 * phi, "unclipped momentum would exceed phi: " + maxFree[0]);
    }

    @Test
    void clipThresholdIsRoundedDownToFloat() {
        assertTrue(Co2OuterStep.roundedDown(1e-3) <= 1e-3);
        assertEquals(Math.nextUp(Co2OuterStep.roundedDown(1e-3)), (float) 1e-3); // 1e-3f itself is above 1e-3
        assertEquals(0.5f, Co2OuterStep.roundedDown(0.5));
    }

    // ---- the momentum equations by hand ----------------------------------------------------------------------

    /**
     * beta = 0.5, alpha = 0.7, lambda = 2, delayed, local step y_t = x_t - s_t. Element 0 by hand (x_0 = 1;
     * s = 0.4, -0.1, 0.1):
     * <pre>
     *   round 0: skip                      x_1 = 1
     *   round 1: ybar_0 = 0.6   Delta = (x_0 - 0.6)/2 = 0.2     m = 0.2     x_2 = 1 - 0.7*0.2 = 0.86
     *   round 2: ybar_1 = 1.1   Delta = (x_1 - 1.1)/2 = -0.05   m = 0.05    x_3 = 0.86 - 0.035 = 0.825
     *   round 3: ybar_2 = 0.76  Delta = (x_2 - 0.76)/2 = 0.05   m = 0.075   x_4 = 0.825 - 0.0525 = 0.7725
     * </pre>
     * Every element is also checked against the equations evaluated in double. Tolerance 5e-6: the float run
     * rounds its inputs (0.7, s, x_0) and each of about six operations a round, three rounds, each rounding at most
     * 2^-24 relative on values below 2 (1.2e-7): about twenty of them, 2.4e-6, doubled for propagation.
     */
    @Test
    void momentumMatchesTheEquationsOverThreeOuterSteps() {
        double beta = 0.5;
        double alpha = 0.7;
        double lambda = 2.0;
        double[] x0 = {1.0, -0.5, 0.25, 1.75, -1.25};
        double[][] s = {{0.4, 0.3, -0.2, 0.05, 0.6}, {-0.1, 0.2, 0.5, -0.3, 0.1}, {0.1, -0.4, 0.25, 0.2, -0.6},
            {0.3, 0.1, -0.1, 0.4, 0.2}};
        int n = x0.length;
        float[] x0f = new float[n];
        for (int k = 0; k < n; k++) {
            x0f[k] = (float) x0[k];
        }
        INDArray live = floats(x0f);
        Co2OuterStep outer = new Co2OuterStep(live, oneSpan(n), new Co2Config(3, alpha, beta, lambda, false, 1.0));

        double[] xPrev = x0.clone();
        double[] x = x0.clone();
        double[] m = new double[n];
        double[][] ybar = new double[s.length][n];
        double tol = 5e-6;
        Co2Rounds.delayed(outer, live, s.length, (t, start, out) -> {
            for (int k = 0; k < n; k++) {
                out[k] = (float) (start[k] - s[t][k]);
            }
        }, (t, out) -> {
            for (int k = 0; k < n; k++) {
                ybar[t][k] = x[k] - s[t][k]; // the reference's own ybar_t, from its own x_t
            }
            for (int k = 0; k < n; k++) {
                if (t == 0) {
                    xPrev[k] = x[k];
                } else {
                    double delta = (xPrev[k] - ybar[t - 1][k]) / lambda;
                    m[k] = beta * m[k] + delta;
                    double next = x[k] - alpha * m[k];
                    xPrev[k] = x[k];
                    x[k] = next;
                }
            }
            float[] gotX = state(outer, "co2.x");
            float[] gotPrev = state(outer, "co2.x_prev");
            float[] gotM = state(outer, "co2.outer_momentum");
            float[] gotLive = read(live);
            for (int k = 0; k < n; k++) {
                assertEquals(x[k], gotX[k], tol, "x, round " + t + " element " + k);
                assertEquals(xPrev[k], gotPrev[k], tol, "x_prev, round " + t + " element " + k);
                assertEquals(m[k], gotM[k], tol, "m, round " + t + " element " + k);
                assertEquals(gotX[k], gotLive[k], "the live params hold x after writeOuter");
            }
        });
        float[] end = state(outer, "co2.x");
        assertEquals(0.7725, end[0], tol, "x_4 of element 0, by hand");
        assertEquals(0.075, state(outer, "co2.outer_momentum")[0], tol, "m after round 3 of element 0, by hand");
        assertEquals(0.825, state(outer, "co2.x_prev")[0], tol, "x_3 of element 0, by hand");
    }

    // ---- sharding ------------------------------------------------------------------------------------------

    /**
     * Random local rounds with clipping and momentum, so every branch of the update runs; the ranges are cut at
     * {@code cuts} (increasing, inside (0, n)), one outer step per range as the ranks of a sharded run hold them.
     */
    private static void assertShardsMatchWhole(GapPenalty penalty, int... cuts) {
        int n = 11;
        Co2Config config = new Co2Config(2, 0.9, 0.6, 1.3, true, 0.05);
        SplittableRandom rnd = new SplittableRandom(17);
        float[] x0 = new float[n];
        for (int k = 0; k < n; k++) {
            x0[k] = (float) rnd.nextDouble(-1, 1);
        }
        int rounds = 6;
        float[][] noise = new float[rounds][n];
        for (float[] row : noise) {
            for (int k = 0; k < n; k++) {
                row[k] = (float) rnd.nextDouble(-0.1, 0.1);
            }
        }
        INDArray liveWhole = floats(x0);
        INDArray liveShards = floats(x0);
        Co2OuterStep whole = new Co2OuterStep(liveWhole, THREE, config, penalty, Shard.whole(n));
        int[] bounds = new int[cuts.length + 2];
        System.arraycopy(cuts, 0, bounds, 1, cuts.length);
        bounds[bounds.length - 1] = n;
        Co2OuterStep[] shards = new Co2OuterStep[cuts.length + 1];
        for (int r = 0; r < shards.length; r++) {
            shards[r] = new Co2OuterStep(liveShards, THREE, config, penalty, new Shard(bounds[r], bounds[r + 1]));
        }
        whole.begin();
        for (Co2OuterStep shard : shards) {
            shard.begin();
        }
        INDArray[] pending = {Nd4j.zeros(DataType.FLOAT, n), Nd4j.zeros(DataType.FLOAT, n)};
        for (int t = 0; t < rounds; t++) {
            float[] y = read(liveWhole);
            assertArrayEquals(y, read(liveShards), "both start round " + t + " at the same x_t");
            for (int k = 0; k < n; k++) {
                y[k] += noise[t][k];
            }
            pending[t & 1].assign(floats(y));
            if (t == 0) {
                whole.skip();
                for (Co2OuterStep shard : shards) {
                    shard.skip();
                }
            } else {
                INDArray ybar = pending[(t - 1) & 1];
                whole.apply(view(ybar));
                for (int r = 0; r < shards.length; r++) {
                    shards[r].apply(NativeMemory.unsafe(ybar, bounds[r], bounds[r + 1]));
                }
            }
            whole.writeOuter();
            for (Co2OuterStep shard : shards) {
                shard.writeOuter();
            }
            for (String name : List.of("co2.x_prev", "co2.x", "co2.outer_momentum")) {
                float[] joined = new float[n];
                for (int r = 0; r < shards.length; r++) {
                    if (bounds[r] < bounds[r + 1]) { // an empty range has no state
                        System.arraycopy(state(shards[r], name), 0, joined, bounds[r], bounds[r + 1] - bounds[r]);
                    }
                }
                assertBits(state(whole, name), joined, name + " after round " + t);
            }
            assertBits(read(liveWhole), read(liveShards), "live params after round " + t);
        }
    }

    private static void assertBits(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length);
        for (int k = 0; k < expected.length; k++) {
            assertEquals(Float.floatToRawIntBits(expected[k]), Float.floatToRawIntBits(actual[k]),
                    what + ", element " + k);
        }
    }

    @Test
    void twoRangesGiveTheBitsOfTheWholeRange() {
        assertShardsMatchWhole(GapPenalty.constant(1.3), 6); // a cut inside tensor b
        assertShardsMatchWhole(GapPenalty.constant(1.3), 1); // inside tensor a
    }

    /** co2.shard_outer_state's cut over three ranks of 11 elements (3, 4, 4: inside tensors a and b), and others. */
    @Test
    void threeRangesGiveTheBitsOfTheWholeRange() {
        assertShardsMatchWhole(GapPenalty.constant(1.3), 3, 7);
        assertShardsMatchWhole(GapPenalty.constant(1.3), 2, 6);
        assertShardsMatchWhole(GapPenalty.constant(1.3), 5, 5); // an empty middle range
    }

    @Test
    void twoRangesGiveTheBitsOfTheWholeRangeWithTheGapPenaltyWhenCutBetweenTensors() {
        assertShardsMatchWhole(GapPenalty.gapScaled(1.3), 4); // between a and b: each tensor's norms are local
        assertShardsMatchWhole(GapPenalty.gapScaled(1.3), 9);
    }

    @Test
    void emptyRangeIsANoOp() {
        INDArray live = floats(1f, 2f, 3f);
        List<ParamSpan> spans = oneSpan(3);
        Co2OuterStep outer = new Co2OuterStep(live, spans, PLAIN, GapPenalty.constant(1.0), new Shard(3, 3));
        outer.begin();
        outer.skip();
        outer.apply(view(floats(9f, 9f, 9f)));
        outer.writeOuter();
        assertArrayEquals(new float[] {1f, 2f, 3f}, read(live));
        assertTrue(outer.state().isEmpty());
        assertEquals(0, outer.stateBytes());
    }

    // ---- checkpoint state and misuse -----------------------------------------------------------------------

    @Test
    void stateNamesTheOuterBuffersOfTheRangeAsViews() {
        INDArray live = floats(1f, 2f, 3f, 4f, 5f, 6f, 7f, 8f, 9f, 10f, 11f);
        Co2OuterStep outer = new Co2OuterStep(live, THREE, Co2Config.defaults(), GapPenalty.constant(1.0),
                new Shard(4, 9));
        outer.begin();
        Map<String, StateSlice> state = outer.state();
        assertEquals(List.of("co2.x_prev", "co2.x", "co2.outer_momentum"), List.copyOf(state.keySet()));
        for (StateSlice slice : state.values()) {
            assertEquals(4, slice.from());
            assertArrayEquals(new long[] {11}, slice.fullShape());
            assertEquals(5, slice.data().length());
        }
        assertArrayEquals(new float[] {5f, 6f, 7f, 8f, 9f}, state(outer, "co2.x"));
        assertEquals(3 * 5 * 4, outer.stateBytes());

        state.get("co2.x").data().assign(floats(0f, 0f, 0f, 0f, 0f)); // what a checkpoint load does
        outer.writeOuter();
        assertArrayEquals(new float[] {1f, 2f, 3f, 4f, 0f, 0f, 0f, 0f, 0f, 10f, 11f}, read(live));
    }

    @Test
    void refusesMisuse() {
        INDArray live = floats(1f, 2f, 3f);
        Co2OuterStep outer = new Co2OuterStep(live, oneSpan(3), PLAIN);
        assertThrows(IllegalStateException.class, outer::skip, "step 3 before begin");
        outer.begin();
        assertThrows(IllegalArgumentException.class, () -> outer.apply(view(floats(1f, 2f))), "short average");
        assertThrows(IllegalArgumentException.class, () -> new Co2OuterStep(live, oneSpan(2), PLAIN),
                "spans must cover the range");
        assertThrows(IllegalArgumentException.class,
                () -> new Co2OuterStep(Nd4j.zeros(DataType.DOUBLE, 3), oneSpan(3), PLAIN), "float32 only");
    }
}
