package dev.tessera.optimizers;

import java.util.Arrays;
import java.util.List;

/**
 * Where ZeRO cuts the flat buffer: W contiguous ranges, every cut on a row boundary (ALGORITHMS.md §3.5).
 * Row stats of a factored matrix need only their own row, so a cut between rows keeps them local and only the
 * column stats and a few scalars are reduced; a cut inside a row would split a row statistic between ranks.
 */
public final class ShardPlan {

    private ShardPlan() {
    }

    /**
     * world+1 nondecreasing cut points, bounds[0]=0, bounds[world]=total. Admissible cut points: tensor boundaries,
     * and for 2-D tensors [n, m] every row boundary offset+i*m. 1-D tensors and tensors with ndim>2 are never split.
     * Cut k (0<k<world) is the admissible point nearest to round(k*total/world) (ties: the lower one), and never below cut k-1.
     */
    public static long[] bounds(List<ParamSpan> spans, long total, int world) {
        if (world < 1) {
            throw new IllegalArgumentException("world must be at least 1, got " + world);
        }
        if (total < 0) {
            throw new IllegalArgumentException("total must be nonnegative, got " + total);
        }
        long[] points = admissible(spans, total);
        long[] bounds = new long[world + 1];
        bounds[world] = total;
        for (int k = 1; k < world; k++) {
            // round(k*total/world), halves up, in exact integer arithmetic.
            long twice = Math.multiplyExact(2L * k, total);
            long target = Math.floorDiv(Math.addExact(twice, world), 2L * world);
            bounds[k] = Math.max(bounds[k - 1], nearest(points, target));
        }
        return bounds;
    }

    /** Sorted, distinct admissible cut points: 0, total, every tensor boundary and every 2-D row boundary. */
    private static long[] admissible(List<ParamSpan> spans, long total) {
        long count = 2;
        for (ParamSpan span : spans) {
            long end = span.offset() + span.numel();
            if (span.offset() < 0 || span.numel() < 0 || end > total) {
                throw new IllegalArgumentException("span " + span.name() + " [" + span.offset() + ", " + end
                        + ") lies outside [0, " + total + ")");
            }
            count += 2 + (isMatrix(span) ? span.shape()[0] : 0);
        }
        long[] points = new long[Math.toIntExact(count)];
        int at = 0;
        points[at++] = 0;
        points[at++] = total;
        for (ParamSpan span : spans) {
            points[at++] = span.offset();
            points[at++] = span.offset() + span.numel();
            if (isMatrix(span)) {
                long cols = span.shape()[1];
                for (long i = 0; i < span.shape()[0]; i++) {
                    points[at++] = span.offset() + i * cols;
                }
            }
        }
        Arrays.sort(points);
        int distinct = 0;
        for (int i = 0; i < points.length; i++) {
            if (i == 0 || points[i] != points[distinct - 1]) {
                points[distinct++] = points[i];
            }
        }
        return Arrays.copyOf(points, distinct);
    }

    private static boolean isMatrix(ParamSpan span) {
        return span.shape().length == 2 && span.shape()[1] > 0;
    }

    /** The admissible point nearest to {@code target}; of two equally near, the lower. */
    private static long nearest(long[] points, long target) {
        int i = Arrays.binarySearch(points, target);
        if (i >= 0) {
            return points[i];
        }
        int above = -i - 1; // points[above] > target; 0 and total bracket every target, so both sides exist
        long upper = points[Math.min(above, points.length - 1)];
        long lower = points[Math.max(above - 1, 0)];
        return target - lower <= upper - target ? lower : upper;
    }
}
