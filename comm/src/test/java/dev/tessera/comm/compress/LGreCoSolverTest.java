package dev.tessera.comm.compress;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class LGreCoSolverTest {

    // Oracle 1: QSGD bits {2, 4, 8}, default 4 bits (index 1), E = 5.0
    private static final long[][] HAND_SIZES = {{2_000_000, 4_000_000, 8_000_000}, {20_000, 40_000, 80_000}};
    private static final int[] HAND_DEFAULTS = {1, 1};

    private static double[][] handErrors(double bEightBits) {
        return new double[][] {{3.0, 1.0, 0.1}, {40, 4.0, bEightBits}};
    }

    @Test
    void handExampleTradesLayerAForLayerB() {
        for (int resolution : new int[] {1000, 10}) {
            int[] choice = LGreCoSolver.solve(HAND_SIZES, handErrors(0.2), HAND_DEFAULTS, resolution);
            assertArrayEquals(new int[] {0, 2}, choice, "D = " + resolution); // A = 2 bits, B = 8 bits
            assertEquals(2_080_000, bits(HAND_SIZES, choice));
        }
    }

    @Test
    void handExampleOverBudgetKeepsTheDefaults() {
        for (int resolution : new int[] {1000, 10}) {
            assertArrayEquals(HAND_DEFAULTS, LGreCoSolver.solve(HAND_SIZES, handErrors(2.05), HAND_DEFAULTS,
                    resolution), "D = " + resolution);
        }
    }

    @Test
    void slackScalesTheBudget() {
        // E = 5.0; A2 + B8 errs 3.2, so it fits a budget of 3.5 (slack -0.3) and not one of 3.0 (slack -0.4), where
        // everything that fits is larger than the defaults, which then stay although they do not fit.
        assertArrayEquals(new int[] {0, 2}, LGreCoSolver.solve(HAND_SIZES, handErrors(0.2), HAND_DEFAULTS, 1000,
                -0.3));
        assertArrayEquals(HAND_DEFAULTS, LGreCoSolver.solve(HAND_SIZES, handErrors(0.2), HAND_DEFAULTS, 1000, -0.4));
        // With B8 at 2.05, A2 + B8 errs 5.05: over E, within 1.1 E.
        assertArrayEquals(new int[] {0, 2}, LGreCoSolver.solve(HAND_SIZES, handErrors(2.05), HAND_DEFAULTS, 1000,
                0.1));
        for (double slack : new double[] {-1, -2, Double.NaN, Double.POSITIVE_INFINITY}) {
            assertThrows(IllegalArgumentException.class, () -> LGreCoSolver.solve(HAND_SIZES, handErrors(0.2),
                    HAND_DEFAULTS, 1000, slack), "slack " + slack);
        }
    }

    @Test
    void budgetDeepInTheSubnormalsStillDividesAndChooses() {
        double[][] errors = handErrors(0.2);
        for (double[] row : errors) {
            for (int c = 0; c < row.length; c++) {
                row[c] = Math.scalb(row[c], -1072); // E is 20 x 2^-1074, so E / 1000 is zero
            }
        }
        assertArrayEquals(new int[] {0, 2}, LGreCoSolver.solve(HAND_SIZES, errors, HAND_DEFAULTS, 1000));
    }

    /**
     * Oracle 2 on arbitrary doubles. The solver keeps the true (real-number) total within D x fl(E / D), at most
     * E x (1 + 2^-53); this test adds the chosen errors and the defaults' in doubles, each sum rounding by at most
     * (L - 1) x 2^-53 relative. With L <= 6 that is under 2e-15 in all, far below the 1e-12 allowed.
     */
    @Test
    void randomInstancesStayWithinBudgetAndNeverGrow() {
        SplittableRandom rng = new SplittableRandom(20240611);
        int[] resolutions = {1, 2, 3, 10, 100, 1000};
        int switched = 0;
        int trials = 3000;
        for (int trial = 0; trial < trials; trial++) {
            int layers = 1 + rng.nextInt(6);
            long[][] sizes = new long[layers][];
            double[][] errors = new double[layers][];
            int[] defaults = new int[layers];
            for (int l = 0; l < layers; l++) {
                int candidates = 1 + rng.nextInt(5);
                sizes[l] = new long[candidates];
                errors[l] = new double[candidates];
                for (int c = 0; c < candidates; c++) {
                    sizes[l][c] = rng.nextLong(1_000_000);
                    errors[l][c] = rng.nextInt(8) == 0 ? 0 : Math.scalb(rng.nextDouble(), rng.nextInt(-20, 20));
                }
                defaults[l] = rng.nextInt(candidates);
            }
            int resolution = resolutions[rng.nextInt(resolutions.length)];
            int[] choice = LGreCoSolver.solve(sizes, errors, defaults, resolution);

            String where = "trial " + trial;
            double budget = error(errors, defaults);
            assertTrue(error(errors, choice) <= budget * (1 + 1e-12), where);
            long chosen = bits(sizes, choice);
            long uniform = bits(sizes, defaults);
            assertTrue(chosen < uniform || Arrays.equals(choice, defaults), where + ": a switch must save");
            switched += Arrays.equals(choice, defaults) ? 0 : 1;
        }
        assertTrue(switched > trials / 4, "only " + switched + " instances left the defaults: a weak test");
    }

    /** Oracle 2 where rounding to units loses nothing: errors are integer multiples of a power-of-two Delta. */
    @Test
    void exactMultiplesOfDeltaMatchBruteForce() {
        SplittableRandom rng = new SplittableRandom(7);
        for (int trial = 0; trial < 1500; trial++) {
            int layers = 1 + rng.nextInt(5);
            int resolution = 1 + rng.nextInt(60);
            double delta = Math.scalb(1.0, rng.nextInt(-30, 30));
            int[] defaultUnits = composition(rng, resolution, layers);
            long[][] sizes = new long[layers][];
            double[][] errors = new double[layers][];
            int[] defaults = new int[layers];
            for (int l = 0; l < layers; l++) {
                int candidates = 1 + rng.nextInt(4);
                sizes[l] = new long[candidates];
                errors[l] = new double[candidates];
                defaults[l] = rng.nextInt(candidates);
                for (int c = 0; c < candidates; c++) {
                    sizes[l][c] = rng.nextInt(50); // a small range, so that ties are common
                    int units = c == defaults[l] ? defaultUnits[l] : rng.nextInt(resolution + 3);
                    errors[l][c] = units * delta;
                }
            }
            int[] choice = LGreCoSolver.solve(sizes, errors, defaults, resolution);

            String where = "trial " + trial;
            assertEquals(bruteForceBits(sizes, errors, error(errors, defaults), new int[layers], 0), bits(sizes, choice),
                    where);
            assertTrue(error(errors, choice) <= error(errors, defaults), where);
        }
    }

    /** 3.4334313269443197 / fl(3.4334313269443193 / 3) rounds to exactly 3.0, though the true quotient exceeds 3. */
    @Test
    void anErrorOverBudgetIsRefusedWhenItsQuotientRoundsDown() {
        double budget = 3.4334313269443193;
        double over = Math.nextUp(budget);
        assertEquals(3.0, Math.ceil(over / (budget / 3)));
        long[][] sizes = {{100, 1}};
        double[][] errors = {{budget, over}};
        assertArrayEquals(new int[] {0}, LGreCoSolver.solve(sizes, errors, new int[] {0}, 3));
    }

    @Test
    void singleCandidatesAreTheAnswer() {
        long[][] sizes = {{100}, {5}, {0}};
        double[][] errors = {{2.5}, {0}, {7}};
        assertArrayEquals(new int[3], LGreCoSolver.solve(sizes, errors, new int[3], 1000));
    }

    @Test
    void zeroBudgetPicksOnlyZeroErrorCandidates() {
        long[][] sizes = {{40, 10, 20, 1}, {30, 30, 5}, {8, 8}};
        double[][] errors = {{0, 0.5, 0, 0.25}, {0, 0, 1e-300}, {0, 0}};
        // layer 0: 20 is the smallest lossless; layer 1: 30 ties the default, so it stays; layer 2: likewise
        assertArrayEquals(new int[] {2, 1, 1}, LGreCoSolver.solve(sizes, errors, new int[] {0, 1, 1}, 1000));
    }

    @Test
    void noCandidatesAtAllIsAnEmptyChoice() {
        assertArrayEquals(new int[0], LGreCoSolver.solve(new long[0][], new double[0][], new int[0], 1000));
    }

    @Test
    void equalSizesKeepTheLowerIndex() {
        long[][] sizes = {{10, 5, 5}};
        double[][] errors = {{1, 1, 1}};
        assertArrayEquals(new int[] {1}, LGreCoSolver.solve(sizes, errors, new int[] {0}, 10));
    }

    @Test
    void aChoiceNoSmallerThanTheDefaultsIsDropped() {
        long[][] sizes = {{5, 5}};
        double[][] errors = {{1, 0}};
        assertArrayEquals(new int[] {0}, LGreCoSolver.solve(sizes, errors, new int[] {0}, 10));
    }

    @Test
    void resolutionGrowsAboveTwoHundredLayers() {
        assertEquals(1000, LGreCoSolver.defaultResolution(200));
        assertEquals(10_000, LGreCoSolver.defaultResolution(201));
    }

    @Test
    void invalidInputNamesTheLayer() {
        long[][] sizes = {{1, 2}, {1, 2}};
        int[] defaults = {0, 0};
        assertLayerOne(sizes, new double[][] {{0, 1}, {0}}, defaults); // ragged
        assertLayerOne(sizes, new double[][] {{0, 1}, {0, -1}}, defaults);
        assertLayerOne(sizes, new double[][] {{0, 1}, {Double.NaN, 1}}, defaults);
        assertLayerOne(sizes, new double[][] {{0, 1}, {Double.POSITIVE_INFINITY, 1}}, defaults);
        assertLayerOne(sizes, new double[][] {{0, 1}, {0, 1}}, new int[] {0, 2});
        assertLayerOne(sizes, new double[][] {{0, 1}, {0, 1}}, new int[] {0, -1});
        assertLayerOne(new long[][] {{1, 2}, {}}, new double[][] {{0, 1}, {}}, defaults);
        assertLayerOne(new long[][] {{1, 2}, {1, -2}}, new double[][] {{0, 1}, {0, 1}}, defaults);
        assertLayerOne(new long[][] {{1, 2}, null}, new double[][] {{0, 1}, {0, 1}}, defaults);
        assertLayerOne(new long[][] {{Long.MAX_VALUE}, {1}}, new double[][] {{0}, {0}}, defaults);

        assertThrows(IllegalArgumentException.class,
                () -> LGreCoSolver.solve(sizes, new double[][] {{0, 1}}, defaults, 1000));
        assertThrows(IllegalArgumentException.class,
                () -> LGreCoSolver.solve(sizes, new double[][] {{0, 1}, {0, 1}}, defaults, 0));
        assertThrows(IllegalArgumentException.class, () -> LGreCoSolver.solve(sizes,
                new double[][] {{Double.MAX_VALUE, 1}, {Double.MAX_VALUE, 1}}, defaults, 1000));
    }

    private static void assertLayerOne(long[][] sizes, double[][] errors, int[] defaults) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LGreCoSolver.solve(sizes, errors, defaults, 1000));
        assertTrue(e.getMessage().contains("layer 1"), e.getMessage());
    }

    /** D split into {@code parts} non-negative integers. */
    private static int[] composition(SplittableRandom rng, int total, int parts) {
        int[] units = new int[parts];
        for (int i = 0; i < total; i++) {
            units[rng.nextInt(parts)]++;
        }
        return units;
    }

    private static long bruteForceBits(long[][] sizes, double[][] errors, double budget, int[] choice, int layer) {
        if (layer == choice.length) {
            return error(errors, choice) <= budget ? bits(sizes, choice) : Long.MAX_VALUE;
        }
        long best = Long.MAX_VALUE;
        for (int c = 0; c < sizes[layer].length; c++) {
            choice[layer] = c;
            best = Math.min(best, bruteForceBits(sizes, errors, budget, choice, layer + 1));
        }
        return best;
    }

    private static long bits(long[][] sizes, int[] choice) {
        long total = 0;
        for (int l = 0; l < choice.length; l++) {
            total += sizes[l][choice[l]];
        }
        return total;
    }

    private static double error(double[][] errors, int[] choice) {
        double total = 0;
        for (int l = 0; l < choice.length; l++) {
            total += errors[l][choice[l]];
        }
        return total;
    }
}
