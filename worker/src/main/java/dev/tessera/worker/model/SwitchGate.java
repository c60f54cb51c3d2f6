package dev.tessera.worker.model;

import java.util.Arrays;

/**
 * Switch Transformer's top-1 ({@code model.gate: switch}, ALGORITHMS.md 7.2): each token goes to its most probable
 * expert while that expert has one of its {@code C = ceil(cf * S / E)} slots free, in token order (or, batch
 * prioritized, in order of falling top probability); past that it is dropped (the residual carries it). The output
 * is scaled by the raw probability, not renormalised, so the router still gets a gradient. {@code f_e} counts first
 * choices before dropping.
 */
final class SwitchGate implements Gate {

    private final int[] taken; // [E] slots taken so far in this routing
    private final boolean batchPrioritized;
    private final SlotOrder slotOrder = new SlotOrder();

    SwitchGate(int experts, boolean batchPrioritized) {
        this.taken = new int[experts];
        this.batchPrioritized = batchPrioritized;
    }

    @Override
    public int slots() {
        return 1;
    }

    @Override
    public int capacity(int tokens, int experts, double factor) {
        return (int) Math.min(tokens, Math.ceil(factor * tokens / experts));
    }

    @Override
    public void route(double[] probs, int tokens, int experts, int capacity, TokenUniforms uniform,
                      int[] choice, boolean[] kept, double[] weight, double[] balance) {
        Arrays.fill(taken, 0);
        for (int n = 0; n < tokens; n++) {
            Gate.pickTop(probs, n, experts, 1, choice);
            balance[choice[n]]++;
            weight[n] = probs[n * experts + choice[n]];
        }
        int[] order = slotOrder.of(probs, tokens, experts, choice, 1, batchPrioritized);
        for (int i = 0; i < tokens; i++) {
            int n = order[i];
            int e = choice[n];
            kept[n] = taken[e] < capacity;
            if (kept[n]) {
                taken[e]++;
            }
        }
    }

    @Override
    public double balanceTotal(double tokens) {
        return tokens;
    }

    @Override
    public void weightBackward(double[] probs, int n, int experts, int[] choice, boolean[] kept, double[] weight,
                               double[] dWeight, double[] dProbs) {
        dProbs[choice[n]] += dWeight[n];
    }
}
