package dev.tessera.comm.compress;

import java.util.Arrays;

/**
 * L-GreCo's per-layer choice (ALGORITHMS.md 4, "DP solver"): per layer one compression candidate, so that the total
 * compressed size is smallest while the total error stays within {@code E}, the error of the uniform defaults (or
 * {@code 1 + slack} times it). The error axis is cut into {@code D} units of {@code Delta = E / D} and every error is rounded UP to whole units, checked
 * exactly ({@code units x Delta >= e} as real numbers), so a choice the dynamic programme accepts has a true total
 * error of at most {@code D x Delta}, which is {@code E} up to the one rounding of the division: at most
 * {@code E x (1 + 2^-53)}. The result is never larger than the defaults, which remain the answer whenever nothing
 * strictly smaller fits.
 *
 * <p>Tie rules, so that every rank that runs the solver on the same numbers gets the same choice:
 * <ul>
 *   <li>between candidates of one layer that reach the same size at the same error units, the lower index;</li>
 *   <li>between error totals that reach the same smallest size, the smallest total (the most error headroom);</li>
 *   <li>a choice only as small as the defaults is dropped for the defaults: a switch must save something;</li>
 *   <li>with {@code E = 0}, each layer keeps its default unless a zero-error candidate is strictly smaller; among
 *       equally small ones, the lower index.</li>
 * </ul>
 */
public final class LGreCoSolver {

    /**
     * Budgets below this are scaled up by {@link #SUBNORMAL_SHIFT} powers of two before dividing, so that
     * {@code Delta} cannot underflow to zero. Scaling by a power of two is exact, so the choice is unchanged; an error
     * that overflows to infinity was far over the budget and stays infeasible.
     */
    private static final double TINY_BUDGET = 0x1p-960;
    private static final int SUBNORMAL_SHIFT = 960;
    private static final long UNREACHABLE = -1; // sizes are >= 0, so no sum of them is negative

    private LGreCoSolver() {
    }

    /** ALGORITHMS.md 4's resolution {@code D}: 1000, or 10 000 above 200 layers, where units get spread thinner. */
    public static int defaultResolution(int layers) {
        if (layers < 0) {
            throw new IllegalArgumentException("L-GreCo: negative layer count " + layers);
        }
        return layers > 200 ? 10_000 : 1000;
    }

    /**
     * The chosen candidate index per layer.
     *
     * @param sizeBits   {@code sizeBits[l][c]}: the compressed size of layer l under candidate c, in bits, >= 0
     * @param errors     {@code errors[l][c]}: the squared L2 compression error, finite and >= 0
     * @param defaults   {@code defaults[l]}: the uniform baseline's candidate of layer l, which sets the budget
     * @param resolution {@code D}: how many units the error budget is cut into, >= 1
     * @throws IllegalArgumentException on ragged, empty or out-of-range input, naming the layer
     */
    public static int[] solve(long[][] sizeBits, double[][] errors, int[] defaults, int resolution) {
        return solve(sizeBits, errors, defaults, resolution, 0);
    }

    /**
     * The chosen candidate index per layer within {@code E = (1 + slack) x E_def} (ALGORITHMS.md 4's optional budget
     * factor). Below zero the defaults themselves do not fit, so they remain the answer only where nothing smaller
     * does.
     *
     * @param slack in (-1, +inf): the budget's factor over the defaults' error, less one
     */
    public static int[] solve(long[][] sizeBits, double[][] errors, int[] defaults, int resolution, double slack) {
        validate(sizeBits, errors, defaults, resolution);
        if (!(slack > -1) || slack == Double.POSITIVE_INFINITY) {
            throw new IllegalArgumentException("L-GreCo: slack must be finite and > -1, got " + slack);
        }
        double defaultError = 0;
        for (int l = 0; l < defaults.length; l++) {
            defaultError += errors[l][defaults[l]];
        }
        double budget = defaultError * (1 + slack);
        if (!Double.isFinite(budget)) {
            throw new IllegalArgumentException("L-GreCo: the defaults' errors sum to " + defaultError + ", the budget "
                    + budget);
        }
        if (budget == 0) {
            return smallestLossless(sizeBits, errors, defaults);
        }
        int shift = budget < TINY_BUDGET ? SUBNORMAL_SHIFT : 0;
        double delta = Math.scalb(budget, shift) / resolution;
        int[][] weights = new int[defaults.length][];
        for (int l = 0; l < defaults.length; l++) {
            weights[l] = new int[errors[l].length];
            for (int c = 0; c < errors[l].length; c++) {
                weights[l][c] = units(Math.scalb(errors[l][c], shift), delta, resolution);
            }
        }
        int[] choice = cheapestWithin(sizeBits, weights, resolution);
        return choice == null || totalBits(sizeBits, choice) >= totalBits(sizeBits, defaults)
                ? defaults.clone() : choice;
    }

    /**
     * {@code ceil(error / delta)}, checked so that {@code units x delta >= error} holds exactly: the quotient can
     * round down across an integer, never by a whole unit below {@code 2^53}, so one bump suffices. The sign test is
     * exact: both sides are multiples of the smallest double, so fma's one rounding cannot turn a shortfall into
     * zero. Anything over {@code D} units is {@code D + 1}, which no budget row reaches.
     */
    private static int units(double error, double delta, int resolution) {
        double quotient = Math.ceil(error / delta);
        if (quotient > resolution) {
            return resolution + 1;
        }
        int w = (int) quotient;
        return Math.fma(w, delta, -error) < 0 ? w + 1 : w;
    }

    /**
     * The dynamic programme over layers: {@code best[b]} is the smallest size whose error units sum to exactly b.
     * Two rows of sizes and one int backpointer per layer and b, so memory is {@code O(L x D)}. Returns null when
     * no combination fits in D units.
     */
    private static int[] cheapestWithin(long[][] sizeBits, int[][] weights, int resolution) {
        int layers = weights.length;
        long[] previous = new long[resolution + 1];
        long[] current = new long[resolution + 1];
        Arrays.fill(previous, UNREACHABLE);
        previous[0] = 0;
        int[][] picked = new int[layers][resolution + 1];
        for (int l = 0; l < layers; l++) {
            Arrays.fill(current, UNREACHABLE);
            for (int c = 0; c < weights[l].length; c++) { // ascending c with a strict < keeps the lower index on ties
                int w = weights[l][c];
                for (int b = w; b <= resolution; b++) {
                    long before = previous[b - w];
                    if (before == UNREACHABLE) {
                        continue;
                    }
                    long size = before + sizeBits[l][c];
                    if (current[b] == UNREACHABLE || size < current[b]) {
                        current[b] = size;
                        picked[l][b] = c;
                    }
                }
            }
            long[] done = previous;
            previous = current;
            current = done;
        }
        int bestUnits = -1;
        for (int b = 0; b <= resolution; b++) {
            if (previous[b] != UNREACHABLE && (bestUnits < 0 || previous[b] < previous[bestUnits])) {
                bestUnits = b;
            }
        }
        if (bestUnits < 0) {
            return null;
        }
        int[] choice = new int[layers];
        for (int l = layers - 1, b = bestUnits; l >= 0; l--) {
            choice[l] = picked[l][b];
            b -= weights[l][choice[l]];
        }
        return choice;
    }

    /** The {@code E = 0} case: only zero-error candidates keep the budget, and there is no unit to divide by. */
    private static int[] smallestLossless(long[][] sizeBits, double[][] errors, int[] defaults) {
        int[] choice = defaults.clone(); // every default has error 0 here, since the errors are >= 0 and sum to 0
        for (int l = 0; l < choice.length; l++) {
            for (int c = 0; c < errors[l].length; c++) {
                if (errors[l][c] == 0 && sizeBits[l][c] < sizeBits[l][choice[l]]) {
                    choice[l] = c;
                }
            }
        }
        return choice;
    }

    private static long totalBits(long[][] sizeBits, int[] choice) {
        long total = 0;
        for (int l = 0; l < choice.length; l++) {
            total += sizeBits[l][choice[l]];
        }
        return total;
    }

    /** Also bounds the sum of every layer's largest size, so that no size total in the solver overflows. */
    private static void validate(long[][] sizeBits, double[][] errors, int[] defaults, int resolution) {
        if (sizeBits == null || errors == null || defaults == null) {
            throw new IllegalArgumentException("L-GreCo: sizeBits, errors and defaults are required");
        }
        if (sizeBits.length != errors.length || defaults.length != errors.length) {
            throw new IllegalArgumentException("L-GreCo: sizeBits has " + sizeBits.length + " layers, errors "
                    + errors.length + " and defaults " + defaults.length);
        }
        if (resolution < 1 || resolution == Integer.MAX_VALUE) {
            throw new IllegalArgumentException("L-GreCo: resolution must be in [1, " + (Integer.MAX_VALUE - 1)
                    + "], got " + resolution);
        }
        long largestTotal = 0;
        for (int l = 0; l < errors.length; l++) {
            long[] sizes = sizeBits[l];
            double[] errs = errors[l];
            if (sizes == null || errs == null) {
                throw new IllegalArgumentException("L-GreCo layer " + l + ": no size or error row");
            }
            if (sizes.length != errs.length || sizes.length == 0) {
                throw new IllegalArgumentException("L-GreCo layer " + l + ": " + sizes.length + " sizes and "
                        + errs.length + " errors; it needs the same number, at least one");
            }
            if (defaults[l] < 0 || defaults[l] >= sizes.length) {
                throw new IllegalArgumentException("L-GreCo layer " + l + ": default " + defaults[l]
                        + " is not one of its " + sizes.length + " candidates");
            }
            long largest = 0;
            for (int c = 0; c < sizes.length; c++) {
                if (sizes[c] < 0) {
                    throw new IllegalArgumentException("L-GreCo layer " + l + ": candidate " + c + " has size "
                            + sizes[c]);
                }
                if (!(errs[c] >= 0) || errs[c] == Double.POSITIVE_INFINITY) {
                    throw new IllegalArgumentException("L-GreCo layer " + l + ": candidate " + c + " has error "
                            + errs[c] + "; errors must be finite and >= 0");
                }
                largest = Math.max(largest, sizes[c]);
            }
            if (largest > Long.MAX_VALUE - largestTotal) {
                throw new IllegalArgumentException("L-GreCo layer " + l + ": the sizes' total overflows a long");
            }
            largestTotal += largest;
        }
    }
}
