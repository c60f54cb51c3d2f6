package dev.tessera.worker.model;

/**
 * GShard's top-2 ({@code model.gate: gshard}, ALGORITHMS.md 7.1, the paper's Algorithm 1): weights {@code g1n, g2n}
 * renormalised over the two choices; {@code C = ceil(cf * 2 * S / E)} slots per expert. First choices take slots in
 * token order; then second choices, in token order, each kept only if its expert has a slot left and
 * {@code 2 * g2n > r} for the token's uniform draw {@code r} (random routing). A dropped choice adds nothing, and the
 * kept one keeps its weight (not renormalised after dropping). {@code f_e} counts first choices before dropping.
 */
final class GShardGate implements Gate {

    private final int[] taken; // [E] slots taken so far in this routing

    GShardGate(int experts) {
        this.taken = new int[experts];
    }

    @Override
    public int slots() {
        return 2;
    }

    @Override
    public int capacity(int tokens, int experts, double factor) {
        return (int) Math.min(tokens, Math.ceil(factor * 2 * tokens / experts));
    }

    @Override
    public void route(double[] probs, int tokens, int experts, int capacity, TokenUniforms uniform,
                      int[] choice, boolean[] kept, double[] weight, double[] balance) {
        java.util.Arrays.fill(taken, 0);
        for (int n = 0; n < tokens; n++) {
            Gate.pickTop(probs, n, experts, 2, choice);
            Gate.renormalised(probs, n, experts, 2, choice, weight);
            int e1 = choice[2 * n];
            balance[e1]++;
            kept[2 * n] = taken[e1] < capacity;
            if (kept[2 * n]) {
                taken[e1]++;
            }
        }
        for (int n = 0; n < tokens; n++) {
            int e2 = choice[2 * n + 1];
            double r = uniform.of(n); // drawn for every token, kept or not, so draws never shift
            kept[2 * n + 1] = taken[e2] < capacity && 2 * weight[2 * n + 1] > r;
            if (kept[2 * n + 1]) {
                taken[e2]++;
            }
        }
    }

    @Override
    public double balanceTotal(double tokens) {
        return tokens;
    }

    @Override
    public void weightBackward(double[] probs, int n, int experts, int[] choice, double[] weight, double[] dWeight,
                               double[] dProbs) {
        Gate.renormalisedBackward(probs, n, experts, 2, choice, weight, dWeight, dProbs);
    }
}
