package dev.tessera.optimizers;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@link ShardPlan#bounds} against its contract (ALGORITHMS.md §3.5 "Layout"). */
class ShardPlanTest {

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
        assertArrayEquals(new long[] {0, total(spans)}, ShardPlan.bounds(spans, total(spans), 1));
        assertArrayEquals(new long[] {0, 0}, ShardPlan.bounds(List.of(), 0, 1));
    }

    @Test
    void cutsLandOnRowBoundariesAndAreMonotoneForEveryWorldSize() {
        List<ParamSpan> spans = modelLike();
        long total = total(spans);
        for (int world = 1; world <= 64; world++) {
            assertAdmissibleAndMonotone(spans, total, world, ShardPlan.bounds(spans, total, world));
        }
    }

    @Test
    void theSpecExampleAndTheTieRule() {
        // 8x5 matrix + 7-vector, 4 ranks: targets 12, 24, 35 go to rows 10, 25, 35; the vector stays whole.
        assertArrayEquals(new long[] {0, 10, 25, 35, 47},
                ShardPlan.bounds(spans(new long[] {8, 5}, new long[] {7}), 47, 4));
        // 2x4 matrix, 4 ranks: targets 2 and 6 lie halfway between rows, so the lower row boundary wins.
        assertArrayEquals(new long[] {0, 0, 4, 4, 8}, ShardPlan.bounds(spans(new long[] {2, 4}), 8, 4));
    }

    @Test
    void oneDimensionalAndHigherDimensionalTensorsAreNeverSplit() {
        // Target 8 lies inside the 10-vector: the nearest admissible point is its end.
        assertArrayEquals(new long[] {0, 10, 16},
                ShardPlan.bounds(spans(new long[] {10}, new long[] {2, 3}), 16, 2));
        // A [2,3,4] tensor is one block of 24, although its matrices have rows.
        assertArrayEquals(new long[] {0, 24, 28},
                ShardPlan.bounds(spans(new long[] {2, 3, 4}, new long[] {4}), 28, 2));
    }

    @Test
    void shardsOfAModelAreBalancedWithinOneRow() {
        List<ParamSpan> spans = modelLike();
        long total = total(spans);
        // The longest stretch without an admissible cut: the widest row (128); every 1-D and 4-D tensor is
        // shorter, so each cut is within half a row of its target and each shard within one row of total/W.
        long row = 128;
        for (int world = 2; world <= 32; world++) {
            long[] bounds = ShardPlan.bounds(spans, total, world);
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
        long[] bounds = ShardPlan.bounds(spans, 14, 10);
        assertAdmissibleAndMonotone(spans, 14, 10, bounds);
        int empty = 0;
        for (int k = 0; k < 10; k++) {
            if (bounds[k] == bounds[k + 1]) {
                empty++;
            }
        }
        assertEquals(6, empty, java.util.Arrays.toString(bounds)); // 4 admissible ranges: 3 rows, the vector
    }
}
