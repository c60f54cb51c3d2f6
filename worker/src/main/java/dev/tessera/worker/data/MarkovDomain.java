package dev.tessera.worker.data;

import java.util.Arrays;

/**
 * One domain of {@link SyntheticCorpus}: a sparse order-2 Markov chain over {@code symbols} local symbols.
 * Context {@code (a, b)} (index {@code a*symbols + b}) has {@code branching} distinct successors with
 * Dirichlet(1) probabilities. Also holds the chain's stationary distribution over pairs and the entropies
 * that follow from it, so the corpus can state its exact loss floor.
 */
final class MarkovDomain {

    private static final double TOLERANCE = 1e-13;
    private static final int MAX_ITERATIONS = 10_000_000;

    final int symbols;
    final int branching;
    /** successors[c*branching + k]: the k-th successor symbol of context c. */
    private final int[] successors;
    private final double[] probs;
    private final double[] cumulative;
    /** Stationary distribution over pairs (a, b), and its cumulative for sampling. */
    private final double[] pairs;
    private final double[] pairCumulative;
    /** Marginal of a single position under the stationary chain (same for first and second coordinate). */
    private final double[] marginal;
    /** H(x_t | x_{t-2}, x_{t-1}) under stationarity: the entropy rate. */
    final double entropyRate;
    /** H(x_1 | x_0) for a pair drawn from the stationary distribution. */
    final double firstStepEntropy;

    MarkovDomain(int symbols, int branching, SplitMix64 rng) {
        this.symbols = symbols;
        this.branching = branching;
        int contexts = symbols * symbols;
        successors = new int[contexts * branching];
        probs = new double[contexts * branching];
        cumulative = new double[contexts * branching];
        int[] deck = new int[symbols];
        for (int c = 0; c < contexts; c++) {
            for (int s = 0; s < symbols; s++) {
                deck[s] = s;
            }
            double sum = 0;
            for (int k = 0; k < branching; k++) {
                // Partial Fisher-Yates: distinct successors; exponential weights: Dirichlet(1) probabilities.
                int pick = k + rng.nextInt(symbols - k);
                int tmp = deck[k];
                deck[k] = deck[pick];
                deck[pick] = tmp;
                successors[c * branching + k] = deck[k];
                double w = -Math.log1p(-rng.nextDouble());
                probs[c * branching + k] = w;
                sum += w;
            }
            double acc = 0;
            for (int k = 0; k < branching; k++) {
                probs[c * branching + k] /= sum;
                acc += probs[c * branching + k];
                cumulative[c * branching + k] = acc;
            }
            cumulative[c * branching + branching - 1] = 1.0;
        }
        pairs = stationaryPairs();
        pairCumulative = new double[contexts];
        double acc = 0;
        for (int c = 0; c < contexts; c++) {
            acc += pairs[c];
            pairCumulative[c] = acc;
        }
        // Rounding may leave the total a hair below 1; closing it at the last possible pair means a
        // uniform u in [0, 1) can never select a pair of zero probability.
        int lastPossible = contexts - 1;
        while (pairs[lastPossible] == 0) {
            lastPossible--;
        }
        Arrays.fill(pairCumulative, lastPossible, contexts, 1.0);
        marginal = new double[symbols];
        double rate = 0;
        double pairEntropy = 0;
        for (int c = 0; c < contexts; c++) {
            marginal[c / symbols] += pairs[c];
            pairEntropy -= xlogx(pairs[c]);
            double h = 0;
            for (int k = 0; k < branching; k++) {
                h -= xlogx(probs[c * branching + k]);
            }
            rate += pairs[c] * h;
        }
        entropyRate = rate;
        firstStepEntropy = pairEntropy - entropy(marginal);
    }

    /**
     * Lazy power iteration {@code pi <- (pi + pi P) / 2} from the uniform distribution. The lazy step makes
     * the iteration converge even when the pair chain is periodic or reducible (it then finds the
     * stationary distribution reached from uniform), and sampling starts from exactly this distribution,
     * so the stated entropies are exact whatever its structure.
     */
    private double[] stationaryPairs() {
        int contexts = symbols * symbols;
        double[] pi = new double[contexts];
        double[] next = new double[contexts];
        Arrays.fill(pi, 1.0 / contexts);
        for (int iter = 0; iter < MAX_ITERATIONS; iter++) {
            for (int c = 0; c < contexts; c++) {
                next[c] = 0.5 * pi[c];
            }
            for (int c = 0; c < contexts; c++) {
                int b = c % symbols;
                double half = 0.5 * pi[c];
                for (int k = 0; k < branching; k++) {
                    next[b * symbols + successors[c * branching + k]] += half * probs[c * branching + k];
                }
            }
            double diff = 0;
            double sum = 0;
            for (int c = 0; c < contexts; c++) {
                diff += Math.abs(next[c] - pi[c]);
                sum += next[c];
            }
            // Renormalise so rounding drift over many iterations cannot leak probability mass.
            for (int c = 0; c < contexts; c++) {
                pi[c] = next[c] / sum;
            }
            if (diff < TOLERANCE) {
                return pi;
            }
        }
        throw new IllegalStateException("stationary distribution did not converge to " + TOLERANCE
                + " in " + MAX_ITERATIONS + " iterations");
    }

    /** A pair (a, b) from the stationary distribution, as local context index a*symbols + b. */
    int samplePair(double u) {
        int lo = 0;
        int hi = pairCumulative.length - 1;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (pairCumulative[mid] > u) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        return lo;
    }

    int sampleNext(int a, int b, double u) {
        int base = (a * symbols + b) * branching;
        for (int k = 0; k < branching - 1; k++) {
            if (u < cumulative[base + k]) {
                return successors[base + k];
            }
        }
        return successors[base + branching - 1];
    }

    /** P(x_t = c | x_{t-2} = a, x_{t-1} = b); zero for a symbol that is not a successor. */
    double nextProbability(int a, int b, int c) {
        int base = (a * symbols + b) * branching;
        for (int k = 0; k < branching; k++) {
            if (successors[base + k] == c) {
                return probs[base + k];
            }
        }
        return 0;
    }

    /** P(x_1 = b | x_0 = a) under the stationary pair distribution. */
    double firstStepProbability(int a, int b) {
        return marginal[a] == 0 ? 0 : pairs[a * symbols + b] / marginal[a];
    }

    double marginal(int symbol) {
        return marginal[symbol];
    }

    /** Contexts the stationary chain visits; transient ones decay geometrically, hence the threshold. */
    int liveContexts() {
        int n = 0;
        for (double p : pairs) {
            if (p > 1e-12) {
                n++;
            }
        }
        return n;
    }

    static double entropy(double[] p) {
        double h = 0;
        for (double x : p) {
            h -= xlogx(x);
        }
        return h;
    }

    private static double xlogx(double x) {
        return x > 0 ? x * Math.log(x) : 0;
    }
}
