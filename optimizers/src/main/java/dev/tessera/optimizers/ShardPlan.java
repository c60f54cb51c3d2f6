package dev.tessera.optimizers;

import java.util.Arrays;
import java.util.List;
import java.util.function.ToLongFunction;

/**
 * Where ZeRO cuts the flat buffer: W contiguous ranges, every cut on a row boundary (ALGORITHMS.md §3.5).
 * Row stats of a factored matrix need only their own row, so a cut between rows keeps them local and only the
 * column stats and a few scalars are reduced; a cut inside a row would split a row statistic between ranks.
 *
 * <p>The cuts balance two loads at once: parameters (which set gradient and parameter memory) and the
 * optimizer's state. They differ for the factored optimizers, whose state is a few numbers per row and column
 * plus a full second moment per 1-D tensor, and whose column statistics are replicated on every rank holding
 * rows of a matrix (§3.5): cutting where the parameters alone balance can leave one rank with well over its
 * share of Adafactor's state.
 */
public final class ShardPlan {

    /** Bisection steps for the balance factor in [1, W]: far below one element of any realistic buffer. */
    private static final int BISECTIONS = 64;

    private ShardPlan() {
    }

    /**
     * world+1 nondecreasing cut points, bounds[0]=0, bounds[world]=total. Admissible cut points: tensor boundaries,
     * and for 2-D tensors [n, m] every row boundary offset+i*m. 1-D tensors and tensors with ndim>2 are never split.
     *
     * <p>The plan first finds the smallest factor t such that every rank holds at most t*total/W parameters and
     * at most t*S/W state elements, where {@code stateElements} gives the state a rank keeps for a shard and S is
     * the state of the whole buffer. Among the plans meeting t, cut k is the admissible point nearest to
     * round(k*total/world) (ties: the lower one) that still lets the later ranks meet t.
     *
     * @param stateElements the optimizer state a rank keeps for a shard, nondecreasing as the shard widens
     *                      ({@link OptimizerSpec#stateElements}); {@code Shard::length} balances parameters only
     */
    public static long[] bounds(List<ParamSpan> spans, long total, int world, ToLongFunction<Shard> stateElements) {
        if (world < 1) {
            throw new IllegalArgumentException("world must be at least 1, got " + world);
        }
        if (total < 0) {
            throw new IllegalArgumentException("total must be nonnegative, got " + total);
        }
        Loads loads = new Loads(admissible(spans, total), total, world, stateElements);
        double lowest = 1.0;   // infeasible below 1: some rank holds at least its share of each load
        double highest = world; // feasible: one rank holding everything
        if (loads.coverable(lowest)) {
            highest = lowest;
        }
        for (int i = 0; i < BISECTIONS && highest > lowest; i++) {
            double mid = 0.5 * (lowest + highest);
            if (mid <= lowest || mid >= highest) {
                break;
            }
            if (loads.coverable(mid)) {
                highest = mid;
            } else {
                lowest = mid;
            }
        }
        return loads.nearestTargets(highest);
    }

    /** The two loads of a rank holding [points[from], points[to]) of the admissible points, against a factor t. */
    private static final class Loads {
        private final long[] points;
        private final long total;
        private final int world;
        private final ToLongFunction<Shard> stateElements;
        private final double state;

        Loads(long[] points, long total, int world, ToLongFunction<Shard> stateElements) {
            this.points = points;
            this.total = total;
            this.world = world;
            this.stateElements = stateElements;
            this.state = stateElements.applyAsLong(Shard.whole(total));
        }

        /** Whether one rank may hold [points[from], points[to]) when every rank holds at most t shares. */
        boolean fits(int from, int to, double t) {
            long params = points[to] - points[from];
            if (params != 0 && (double) params * world > t * total) {
                return false;
            }
            long held = stateElements.applyAsLong(new Shard(points[from], points[to]));
            return held == 0 || (double) held * world <= t * state;
        }

        /** The last point a rank starting at {@code from} can extend to: the loads only grow as the end moves right. */
        int furthest(int from, double t) {
            int lo = from;
            int hi = points.length - 1;
            while (lo < hi) {
                int mid = (lo + hi + 1) >>> 1;
                if (fits(from, mid, t)) {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            return lo;
        }

        /** The first point a rank can start at to end at {@code to}: the loads only shrink as the start moves right. */
        int earliest(int to, double t) {
            int lo = 0;
            int hi = to;
            while (lo < hi) {
                int mid = (lo + hi) >>> 1;
                if (fits(mid, to, t)) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            return lo;
        }

        /** Whether W ranks, each taking all that t allows, cover the buffer (greedy is optimal for monotone loads). */
        boolean coverable(double t) {
            int at = 0;
            for (int k = 0; k < world && at < points.length - 1; k++) {
                at = furthest(at, t);
            }
            return at == points.length - 1;
        }

        /**
         * Cut k nearest its parameter target, kept inside [the earliest start from which ranks k..W-1 can cover
         * the rest, the furthest rank k-1 can reach]: that interval is never empty once t is coverable.
         */
        long[] nearestTargets(double t) {
            int[] earliestStart = new int[world + 1];
            earliestStart[world] = points.length - 1;
            for (int k = world - 1; k >= 1; k--) {
                earliestStart[k] = earliest(earliestStart[k + 1], t);
            }
            long[] bounds = new long[world + 1];
            bounds[world] = total;
            int cut = 0;
            for (int k = 1; k < world; k++) {
                // round(k*total/world), halves up, in exact integer arithmetic.
                long twice = Math.multiplyExact(2L * k, total);
                long target = Math.floorDiv(Math.addExact(twice, world), 2L * world);
                int reach = furthest(cut, t);
                cut = Math.max(Math.max(cut, earliestStart[k]), Math.min(reach, nearest(points, target)));
                bounds[k] = points[cut];
            }
            return bounds;
        }
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

    /** The index of the admissible point nearest to {@code target}; of two equally near, the lower. */
    private static int nearest(long[] points, long target) {
        int i = Arrays.binarySearch(points, target);
        if (i >= 0) {
            return i;
        }
        int above = Math.min(-i - 1, points.length - 1); // 0 and total bracket every target
        int below = Math.max(above - 1, 0);
        return target - points[below] <= points[above] - target ? below : above;
    }
}
