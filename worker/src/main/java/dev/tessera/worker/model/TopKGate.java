package dev.tessera.worker.model;

import java.util.Arrays;

/**
 * Mixtral's dropless top-k ({@code model.gate: topk}): every token goes to its k most probable experts, their
 * probabilities renormalised to sum to 1; no capacity, so nothing is dropped. The load fraction {@code f_e} counts
 * all k assignments.
 */
final class TopKGate implements Gate {

    private final int k;

    TopKGate(int k) {
        this.k = k;
    }

    @Override
    public int slots() {
        return k;
    }

    @Override
    public int capacity(int tokens, int experts, double factor) {
        return tokens;
    }

    @Override
    public void route(double[] probs, int tokens, int experts, int capacity, TokenUniforms uniform,
                      int[] choice, boolean[] kept, double[] weight, double[] balance) {
        Arrays.fill(kept, 0, tokens * k, true);
        for (int n = 0; n < tokens; n++) {
            Gate.pickTop(probs, n, experts, k, choice);
            Gate.renormalised(probs, n, experts, k, choice, weight);
            for (int j = 0; j < k; j++) {
                balance[choice[n * k + j]]++;
            }
        }
    }

    @Override
    public double balanceTotal(double tokens) {
        return tokens * k;
    }

    @Override
    public void weightBackward(double[] probs, int n, int experts, int[] choice, boolean[] kept, double[] weight,
                               double[] dWeight, double[] dProbs) {
        Gate.renormalisedBackward(probs, n, experts, k, choice, weight, dWeight, dProbs);
    }
}
