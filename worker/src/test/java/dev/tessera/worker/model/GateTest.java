package dev.tessera.worker.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** The gates against ALGORITHMS.md section 7's worked examples. */
class GateTest {

    /** Test oracle 1: E = 3, S = 4, C = 2, the given probabilities and draws r. */
    @Test
    void gshardFollowsThePapersWorkedExample() {
        double[] probs = {.6, .3, .1, .5, .4, .1, .7, .1, .2, .2, .2, .6};
        double[] r = {.5, .95, .1, .9};
        int[] choice = new int[8];
        boolean[] kept = new boolean[8];
        double[] weight = new double[8];
        double[] balance = new double[3];
        Gate gate = Gate.named("gshard", 2, 3);
        gate.route(probs, 4, 3, 2, (n, stream) -> r[n], choice, kept, weight, balance);

        assertArrayEquals(new int[] {0, 1, 0, 1, 0, 2, 2, 0}, choice);  // e1 = [0,0,0,2], e2 = [1,1,2,0]
        // token 0 both kept; token 1 second rejected (2 * .444 < .95); token 2 first dropped (expert 0 full),
        // second kept; token 3 first kept, second rejected (expert 0 full)
        assertArrayEquals(new boolean[] {true, true, true, false, false, true, true, false}, kept);
        double[] expected = {.6 / .9, .3 / .9, .5 / .9, .4 / .9, .7 / .9, .2 / .9, .6 / .8, .2 / .8};
        assertArrayEquals(expected, weight, 1e-12); // g1n, g2n; token 2 keeps .2222 (the paper's, not 1.0)
        assertArrayEquals(new double[] {3, 0, 1}, balance); // first choices, before dropping

        double aux = 0; // E * sum_e f_e P_e
        for (int e = 0; e < 3; e++) {
            double p = (probs[e] + probs[3 + e] + probs[6 + e] + probs[9 + e]) / 4;
            aux += balance[e] / gate.balanceTotal(4) * p;
        }
        assertEquals(1.3125, 3 * aux, 1e-12);
        assertEquals(0.145833, aux / 3, 1e-6); // the paper's (1/E) sum f P
    }

    /** Test oracle 2: a balanced router gives E * sum f P = 1, a collapsed one E. */
    @Test
    void balanceLossIsOneWhenBalancedAndEWhenCollapsed() {
        int experts = 4;
        int tokens = 8;
        Gate gate = Gate.named("switch", 1, experts);
        double[] uniform = new double[tokens * experts];
        double[] collapsed = new double[tokens * experts];
        for (int n = 0; n < tokens; n++) {
            for (int e = 0; e < experts; e++) {
                // round-robin argmax among almost uniform probabilities
                uniform[n * experts + e] = (e == n % experts ? 1.0 + 1e-9 : 1.0) / (experts + 1e-9);
                collapsed[n * experts + e] = e == 0 ? 1.0 : 0.0;
            }
        }
        assertEquals(1.0, balance(gate, uniform, tokens, experts), 1e-8);
        assertEquals(experts, balance(gate, collapsed, tokens, experts), 1e-12);
    }

    private static double balance(Gate gate, double[] probs, int tokens, int experts) {
        double[] balance = new double[experts];
        gate.route(probs, tokens, experts, tokens, (n, stream) -> 0, new int[tokens], new boolean[tokens], new double[tokens],
                balance);
        double sum = 0;
        for (int e = 0; e < experts; e++) {
            double p = 0;
            for (int n = 0; n < tokens; n++) {
                p += probs[n * experts + e] / tokens;
            }
            sum += balance[e] / gate.balanceTotal(tokens) * p;
        }
        return experts * sum;
    }

    @Test
    void switchDropsPastCapacityInTokenOrderAndKeepsRawProbabilities() {
        double[] probs = {.7, .3, .6, .4, .8, .2, .1, .9};
        Gate gate = Gate.named("switch", 1, 2);
        assertEquals(2, gate.capacity(4, 2, 1.0)); // ceil(cf * S / E)
        int[] choice = new int[4];
        boolean[] kept = new boolean[4];
        double[] weight = new double[4];
        gate.route(probs, 4, 2, 2, (n, stream) -> 0, choice, kept, weight, new double[2]);
        assertArrayEquals(new int[] {0, 0, 0, 1}, choice);
        assertArrayEquals(new boolean[] {true, true, false, true}, kept);
        assertArrayEquals(new double[] {.7, .6, .8, .9}, weight, 0);
    }

    @Test
    void capacitiesFollowTheirPapers() {
        assertEquals(3, Gate.named("gshard", 2, 3).capacity(4, 3, 1.0));  // ceil(cf * 2 S / E)
        assertEquals(5, Gate.named("switch", 1, 4).capacity(16, 4, 1.25)); // ceil(cf * S / E)
        assertEquals(16, Gate.named("topk", 2, 4).capacity(16, 4, 0.1));  // dropless
        assertThrows(IllegalArgumentException.class, () -> Gate.named("hash", 2, 4));
    }

    private static final double[] EXAMPLE = {.6, .3, .1, .5, .4, .1, .7, .1, .2, .2, .2, .6};
    private static final double[] DRAWS = {.5, .95, .1, .9};

    private static boolean[] routeExample(Routing routing, int[] choice, double[] weight) {
        boolean[] kept = new boolean[8];
        Gate.of(routing, 2, 3).route(EXAMPLE, 4, 3, 2, (n, stream) -> DRAWS[n], choice, kept, weight, new double[3]);
        return kept;
    }

    /** Option (b): renormalised over the surviving choices, token 2's second expert gets weight 1.0 (7.1 oracle). */
    @Test
    void gshardRenormalisedAfterDroppingGivesALoneSurvivorWeightOne() {
        int[] choice = new int[8];
        double[] weight = new double[8];
        boolean[] kept = routeExample(new Routing("gshard", 1, 1, 0, 0, "random", true, false), choice, weight);
        assertArrayEquals(new boolean[] {true, true, true, false, false, true, true, false}, kept);
        assertArrayEquals(new double[] {.6 / .9, .3 / .9, 1, 0, 0, 1, 1, 0}, weight, 1e-12);
    }

    /** Option (a), all: the second expert is kept whenever it has a slot. */
    @Test
    void gshardKeepingEverySecondExpertThatFits() {
        int[] choice = new int[8];
        boolean[] kept = routeExample(new Routing("gshard", 1, 1, 0, 0, "all", false, false), choice, new double[8]);
        // token 1's second now fits expert 1 (slot 1); token 3's second still finds expert 0 full
        assertArrayEquals(new boolean[] {true, true, true, true, false, true, true, false}, kept);
    }

    /** Option (a), sampling: a second expert other than the first, drawn by Gumbel-max from the token's draws. */
    @Test
    void gshardSamplesTheSecondExpertFromTheTokensOwnDraws() {
        Gate gate = Gate.of(new Routing("gshard", 1, 1, 0, 0, "sampling", false, false), 2, 3);
        int[] seen = new int[3];
        for (int t = 0; t < 300; t++) {
            int trial = t;
            int[] choice = new int[2];
            // token 0 of the example: p = (.6, .3, .1); the draw depends on (trial, stream) only
            gate.route(new double[] {.6, .3, .1}, 1, 3, 1, (n, stream) -> uniform(trial, stream), choice,
                    new boolean[2], new double[2], new double[3]);
            assertEquals(0, choice[0]);
            seen[choice[1]]++;
        }
        assertEquals(0, seen[0], "the first expert is never the second");
        // Gumbel-max over the others samples them in proportion .3 : .1
        assertEquals(0.75, seen[1] / 300.0, 0.08);
    }

    private static double uniform(int trial, int stream) {
        long z = (trial * 0x9E3779B97F4A7C15L + stream) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 31)) * 0x94D049BB133111EBL;
        return ((z ^ (z >>> 29)) >>> 11) * 0x1.0p-53;
    }

    /** Option (e): slots go by falling first-choice probability, so token 1 (.5) is the one expert 0 turns away. */
    @Test
    void batchPrioritizedRoutingFillsSlotsByConfidence() {
        int[] choice = new int[8];
        boolean[] kept = routeExample(new Routing("gshard", 1, 1, 0, 0, "random", false, true), choice, new double[8]);
        // order 2 (.7), 0 (.6), 3 (.6), 1 (.5). Firsts: 2 and 0 fill expert 0, 3 takes expert 2, 1 is dropped.
        // Seconds in that order: 2 -> expert 2 (2 * .222 > .1), 0 -> expert 1 (2 * .333 > .5), 3 and 1 rejected.
        assertArrayEquals(new boolean[] {true, true, false, false, true, true, true, false}, kept);
    }
}
