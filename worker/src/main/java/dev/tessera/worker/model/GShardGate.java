package dev.tessera.worker.model;

import java.util.Arrays;

/**
 * GShard's top-2 ({@code model.gate: gshard}, ALGORITHMS.md 7.1, the paper's Algorithm 1): weights {@code g1n, g2n}
 * renormalised over the two choices; {@code C = ceil(cf * 2 * S / E)} slots per expert. First choices take slots in
 * token order; then second choices, in token order, each kept only if its expert has a slot left and
 * {@code 2 * g2n > r} for the token's uniform draw {@code r} (random routing). A dropped choice adds nothing, and the
 * kept one keeps its weight (not renormalised after dropping). {@code f_e} counts first choices before dropping.
 *
 * <p>The options of 7.1, each off by default: the second expert {@code sampled} by Gumbel-max over the log
 * probabilities with the first masked and then kept whenever it has a slot (fairseq's default, DeepSpeed's only
 * way), or kept {@code all} the time it has a slot; weights renormalised over the choices that survive dropping
 * (fairseq's and DeepSpeed's default); and batch prioritized routing ({@link SlotOrder}).
 */
final class GShardGate implements Gate {

    /** How the second expert is chosen and kept. */
    enum SecondExpert {
        /** The paper's: the second most probable, kept with probability min(1, 2 g2n). */
        RANDOM,
        /** Gumbel-max sampled among the others, kept when it has a slot. */
        SAMPLING,
        /** The second most probable, kept when it has a slot. */
        ALL
    }

    private final int[] taken; // [E] slots taken so far in this routing
    private final SecondExpert second;
    private final boolean renormalizeAfterDrop;
    private final boolean batchPrioritized;
    private final SlotOrder slotOrder = new SlotOrder();

    GShardGate(int experts, SecondExpert second, boolean renormalizeAfterDrop, boolean batchPrioritized) {
        this.taken = new int[experts];
        this.second = second;
        this.renormalizeAfterDrop = renormalizeAfterDrop;
        this.batchPrioritized = batchPrioritized;
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
        Arrays.fill(taken, 0);
        for (int n = 0; n < tokens; n++) {
            Gate.pickTop(probs, n, experts, 2, choice);
            if (second == SecondExpert.SAMPLING) {
                choice[2 * n + 1] = sampledSecond(probs, n, experts, choice[2 * n], uniform);
            }
            balance[choice[2 * n]]++;
        }
        int[] order = slotOrder.of(probs, tokens, experts, choice, 2, batchPrioritized);
        for (int i = 0; i < tokens; i++) {
            int n = order[i];
            int e1 = choice[2 * n];
            kept[2 * n] = taken[e1] < capacity;
            if (kept[2 * n]) {
                taken[e1]++;
            }
        }
        for (int i = 0; i < tokens; i++) {
            int n = order[i];
            int e2 = choice[2 * n + 1];
            double g2 = probs[n * experts + e2] / (probs[n * experts + choice[2 * n]] + probs[n * experts + e2]);
            double r = uniform.of(n, 0); // drawn for every token, kept or not, so draws never shift
            boolean wanted = second != SecondExpert.RANDOM || 2 * g2 > r;
            kept[2 * n + 1] = wanted && taken[e2] < capacity;
            if (kept[2 * n + 1]) {
                taken[e2]++;
            }
        }
        for (int n = 0; n < tokens; n++) {
            if (renormalizeAfterDrop) {
                Gate.renormalisedOverKept(probs, n, experts, 2, choice, kept, weight);
            } else {
                Gate.renormalised(probs, n, experts, 2, choice, weight);
            }
        }
    }

    /** argmax over e != first of log p_e + Gumbel noise, the noise from the token's draws 1 + e. */
    private static int sampledSecond(double[] probs, int n, int experts, int first, TokenUniforms uniform) {
        int best = -1;
        double bestScore = Double.NEGATIVE_INFINITY;
        for (int e = 0; e < experts; e++) {
            if (e == first) {
                continue;
            }
            double u = Math.max(uniform.of(n, 1 + e), Double.MIN_NORMAL);
            double score = Math.log(probs[n * experts + e]) - Math.log(-Math.log(u));
            if (best < 0 || score > bestScore) {
                best = e;
                bestScore = score;
            }
        }
        return best;
    }

    @Override
    public double balanceTotal(double tokens) {
        return tokens;
    }

    @Override
    public void weightBackward(double[] probs, int n, int experts, int[] choice, boolean[] kept, double[] weight,
                               double[] dWeight, double[] dProbs) {
        if (renormalizeAfterDrop) {
            Gate.renormalisedOverKeptBackward(probs, n, experts, 2, choice, kept, weight, dWeight, dProbs);
        } else {
            Gate.renormalisedBackward(probs, n, experts, 2, choice, weight, dWeight, dProbs);
        }
    }
}
