package dev.tessera.optimizers;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalDouble;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/** {@link ShardPlan#bounds} against its contract (ALGORITHMS.md §3.5 "Layout"). */
class ShardPlanTest {

    private static final OptimizerSpec ADAMW = spec(OptimizerSpec.ADAMW);
    private static final OptimizerSpec ADAFACTOR = spec(OptimizerSpec.ADAFACTOR);
    private static final OptimizerSpec CAME = spec(OptimizerSpec.CAME);

    private static OptimizerSpec spec(String name) {
        return new OptimizerSpec(name, AdamWConfig.defaults(), AdafactorConfig.defaults(), CAMEConfig.defaults());
    }

    /** The plan that balances parameters alone (for AdamW, whose state is two numbers per parameter, the same). */
    private static long[] paramsOnly(List<ParamSpan> spans, long total, int world) {
        return ShardPlan.bounds(spans, total, world, Shard::length);
    }

    private static long[] planFor(OptimizerSpec optimizer, List<ParamSpan> spans, long total, int world) {
        return ShardPlan.bounds(spans, total, world, shard -> optimizer.stateElements(spans, shard));
    }

    /** Back-to-back spans of the given shapes, as ParameterStore lays them out. */
    private static List<ParamSpan> spans(long[]... shapes) {
        List<ParamSpan> out = new ArrayList<>();
        long offset = 0;
        for (int k = 0; k < shapes.length; k++) {
            long numel = 1;
            for (long d : shapes[k]) {
                numel *= d;
            }
            out.add(new ParamSpan("t" + k, offset, numel, shapes[k]));
            offset += numel;
        }
        return out;
    }

    private static long total(List<ParamSpan> spans) {
        ParamSpan last = spans.get(spans.size() - 1);
        return last.offset() + last.numel();
    }

    /** A small transformer: embedding, three blocks (gains, attention, MLP, a conv-like 4-D kernel), head. */
    private static List<ParamSpan> modelLike() {
        List<long[]> shapes = new ArrayList<>();
        shapes.add(new long[] {64, 32});
        for (int layer = 0; layer < 3; layer++) {
            shapes.add(new long[] {32});
            shapes.add(new long[] {32, 96});
            shapes.add(new long[] {32, 32});
            shapes.add(new long[] {32});
            shapes.add(new long[] {32, 128});
            shapes.add(new long[] {128});
            shapes.add(new long[] {128, 32});
            shapes.add(new long[] {4, 2, 3, 3});
        }
        shapes.add(new long[] {32});
        shapes.add(new long[] {32, 64});
        return spans(shapes.toArray(new long[0][]));
    }

    /** Asserts every bound is a tensor boundary or a row boundary of a 2-D tensor, and the bounds are monotone. */
    private static void assertAdmissibleAndMonotone(List<ParamSpan> spans, long total, int world, long[] bounds) {
        assertEquals(world + 1, bounds.length);
        assertEquals(0, bounds[0]);
        assertEquals(total, bounds[world]);
        for (int k = 1; k <= world; k++) {
            assertTrue(bounds[k - 1] <= bounds[k], "world " + world + ": bounds decrease at " + k);
        }
        for (long cut : bounds) {
            for (ParamSpan span : spans) {
                long inside = cut - span.offset();
                if (inside <= 0 || inside >= span.numel()) {
                    continue; // at a tensor boundary or outside the tensor
                }
                assertEquals(2, span.shape().length, "world " + world + ": cut " + cut + " splits " + span.name()
                        + " of ndim " + span.shape().length);
                assertEquals(0, inside % span.shape()[1], "world " + world + ": cut " + cut + " inside a row of "
                        + span.name());
            }
        }
    }

    @Test
    void worldOfOneIsTheWholeBuffer() {
        List<ParamSpan> spans = modelLike();
        assertArrayEquals(new long[] {0, total(spans)}, paramsOnly(spans, total(spans), 1));
        assertArrayEquals(new long[] {0, 0}, paramsOnly(List.of(), 0, 1));
    }

    @Test
    void cutsLandOnRowBoundariesAndAreMonotoneForEveryWorldSize() {
        List<ParamSpan> spans = modelLike();
        long total = total(spans);
        for (int world = 1; world <= 64; world++) {
            assertAdmissibleAndMonotone(spans, total, world, paramsOnly(spans, total, world));
        }
    }

    @Test
    void theSpecExampleAndTheTieRule() {
        // 8x5 matrix + 7-vector, 4 ranks: targets 12, 24, 35 go to rows 10, 25, 35; the vector stays whole.
        assertArrayEquals(new long[] {0, 10, 25, 35, 47},
                paramsOnly(spans(new long[] {8, 5}, new long[] {7}), 47, 4));
        // 2x4 matrix, 4 ranks: targets 2 and 6 lie halfway between rows, so the lower row boundary wins.
        assertArrayEquals(new long[] {0, 0, 4, 4, 8}, paramsOnly(spans(new long[] {2, 4}), 8, 4));
    }

    @Test
    void oneDimensionalAndHigherDimensionalTensorsAreNeverSplit() {
        // Target 8 lies inside the 10-vector: the nearest admissible point is its end.
        assertArrayEquals(new long[] {0, 10, 16},
                paramsOnly(spans(new long[] {10}, new long[] {2, 3}), 16, 2));
        // A [2,3,4] tensor is one block of 24, although its matrices have rows.
        assertArrayEquals(new long[] {0, 24, 28},
                paramsOnly(spans(new long[] {2, 3, 4}, new long[] {4}), 28, 2));
    }

    @Test
    void shardsOfAModelAreBalancedWithinOneRow() {
        List<ParamSpan> spans = modelLike();
        long total = total(spans);
        // The longest stretch without an admissible cut: the widest row (128); every 1-D and 4-D tensor is
        // shorter, so each cut is within half a row of its target and each shard within one row of total/W.
        long row = 128;
        for (int world = 2; world <= 32; world++) {
            long[] bounds = paramsOnly(spans, total, world);
            for (int k = 0; k < world; k++) {
                double ideal = (double) total / world;
                double length = bounds[k + 1] - bounds[k];
                assertTrue(Math.abs(length - ideal) <= row, "world " + world + " shard " + k + " has " + length
                        + " elements; ideal " + ideal);
            }
        }
    }

    @Test
    void moreRanksThanRowsLeavesSomeShardsEmpty() {
        List<ParamSpan> spans = spans(new long[] {3, 4}, new long[] {2});
        long[] bounds = paramsOnly(spans, 14, 10);
        assertAdmissibleAndMonotone(spans, 14, 10, bounds);
        int empty = 0;
        for (int k = 0; k < 10; k++) {
            if (bounds[k] == bounds[k + 1]) {
                empty++;
            }
        }
        assertEquals(6, empty, Arrays.toString(bounds)); // 4 admissible ranges: 3 rows, the vector
    }

    /** The wide bench preset's tensors in buffer order: embedding, 4 blocks (d_model 512, d_ff 1376), norm, head. */
    private static List<ParamSpan> widePreset() {
        List<long[]> shapes = new ArrayList<>();
        shapes.add(new long[] {256, 512});
        for (int layer = 0; layer < 4; layer++) {
            shapes.add(new long[] {512});
            for (int projection = 0; projection < 4; projection++) {
                shapes.add(new long[] {512, 512});
            }
            shapes.add(new long[] {512});
            shapes.add(new long[] {1376, 512});
            shapes.add(new long[] {1376, 512});
            shapes.add(new long[] {512, 1376});
        }
        shapes.add(new long[] {512});
        shapes.add(new long[] {256, 512});
        return spans(shapes.toArray(new long[0][]));
    }

    /** max over ranks of max(params_k / (total/W), state_k / (S/W)): the factor the plan minimises. */
    private static double imbalance(OptimizerSpec optimizer, List<ParamSpan> spans, long total, long[] bounds) {
        int world = bounds.length - 1;
        double state = optimizer.stateElements(spans, Shard.whole(total));
        double worst = 0;
        for (int k = 0; k < world; k++) {
            Shard shard = new Shard(bounds[k], bounds[k + 1]);
            worst = Math.max(worst, shard.length() * (double) world / total);
            worst = Math.max(worst, optimizer.stateElements(spans, shard) * (double) world / state);
        }
        return worst;
    }

    /** Every admissible cut point, found by brute force: tensor boundaries and 2-D row boundaries. */
    private static List<Long> admissiblePoints(List<ParamSpan> spans, long total) {
        TreeSet<Long> points = new TreeSet<>(List.of(0L, total));
        for (ParamSpan span : spans) {
            points.add(span.offset());
            points.add(span.offset() + span.numel());
            if (span.shape().length == 2) {
                for (long i = 0; i < span.shape()[0]; i++) {
                    points.add(span.offset() + i * span.shape()[1]);
                }
            }
        }
        return new ArrayList<>(points);
    }

    /** The least imbalance over every admissible plan, by enumerating them. */
    private static double bestImbalance(OptimizerSpec optimizer, List<ParamSpan> spans, long total, int world) {
        List<Long> points = admissiblePoints(spans, total);
        long[] bounds = new long[world + 1];
        bounds[world] = total;
        return bestFrom(optimizer, spans, total, points, bounds, 1, 0);
    }

    private static double bestFrom(OptimizerSpec optimizer, List<ParamSpan> spans, long total, List<Long> points,
                                   long[] bounds, int cut, int fromPoint) {
        if (cut == bounds.length - 1) {
            return imbalance(optimizer, spans, total, bounds);
        }
        double best = Double.MAX_VALUE;
        for (int p = fromPoint; p < points.size(); p++) {
            bounds[cut] = points.get(p);
            best = Math.min(best, bestFrom(optimizer, spans, total, points, bounds, cut + 1, p));
        }
        return best;
    }

    @Test
    void thePlanIsTheLeastImbalancedOfAllAdmissiblePlans() {
        List<List<ParamSpan>> models = List.of(
                spans(new long[] {8, 5}, new long[] {7}),
                spans(new long[] {6}, new long[] {4, 6}, new long[] {6}, new long[] {9, 2}, new long[] {3, 4}),
                spans(new long[] {2, 12}, new long[] {12}, new long[] {12, 2}, new long[] {5, 3}, new long[] {2, 3, 2}));
        for (OptimizerSpec optimizer : List.of(ADAMW, ADAFACTOR, CAME)) {
            for (List<ParamSpan> spans : models) {
                long total = total(spans);
                for (int world = 2; world <= 4; world++) {
                    long[] bounds = planFor(optimizer, spans, total, world);
                    assertAdmissibleAndMonotone(spans, total, world, bounds);
                    double best = bestImbalance(optimizer, spans, total, world);
                    double got = imbalance(optimizer, spans, total, bounds);
                    assertTrue(got <= best * (1 + 1e-12), optimizer.name() + " world " + world + " "
                            + Arrays.toString(bounds) + ": imbalance " + got + ", best " + best);
                }
            }
        }
    }

    @Test
    void theWidePresetKeepsEveryRanksAdafactorStateAndParametersWithinFivePercentOfItsShare() {
        // Parameters alone would cut down_proj of block 3 and leave the last rank 8% over its share of
        // Adafactor's state (replicated column statistics, the final norm's full second moment).
        List<ParamSpan> spans = widePreset();
        long total = total(spans);
        for (int world : new int[] {2, 4}) {
            assertTrue(imbalance(ADAFACTOR, spans, total, paramsOnly(spans, total, world)) > 1.0,
                    "the parameter-only plan is the baseline");
            for (OptimizerSpec optimizer : List.of(ADAMW, ADAFACTOR, CAME)) {
                long[] bounds = planFor(optimizer, spans, total, world);
                double got = imbalance(optimizer, spans, total, bounds);
                assertTrue(got <= 1.05, optimizer.name() + " world " + world + " " + Arrays.toString(bounds)
                        + ": imbalance " + got);
            }
        }
    }

    /** stateElements is what the optimizers allocate, for every shard of every plan, also with Adafactor momentum. */
    @Test
    void stateElementsIsWhatTheOptimizerAllocates() {
        long[][] shapes = {{6}, {4, 6}, {6}, {9, 2}, {3, 4}, {2, 3, 2}};
        AdafactorConfig withMomentum = new AdafactorConfig(1e-30, 1e-3, 1.0, -0.8, true, true, false,
                OptionalDouble.of(0.9), 0.0);
        OptimizerSpec adafactorMomentum = new OptimizerSpec(OptimizerSpec.ADAFACTOR, AdamWConfig.defaults(),
                withMomentum, CAMEConfig.defaults());
        for (DataType dtype : List.of(DataType.FLOAT, DataType.DOUBLE)) {
            FlatModel model = new FlatModel(dtype, shapes);
            for (OptimizerSpec optimizer : List.of(ADAMW, ADAFACTOR, adafactorMomentum, CAME)) {
                for (int world = 1; world <= 4; world++) {
                    long[] bounds = planFor(optimizer, model.spans, model.numel, world);
                    for (int k = 0; k < world; k++) {
                        Shard shard = new Shard(bounds[k], bounds[k + 1]);
                        Optimizer built = optimizer.create(model.params, model.grads, model.spans, shard,
                                (values, length) -> { });
                        assertEquals(built.stateBytes(), optimizer.stateElements(model.spans, shard) * dtype.width(),
                                optimizer.name() + " " + dtype + " shard " + shard);
                    }
                }
            }
        }
    }
}
