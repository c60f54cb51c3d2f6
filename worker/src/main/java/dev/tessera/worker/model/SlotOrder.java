package dev.tessera.worker.model;

/**
 * The order in which tokens take capacity slots: token order (GShard, Switch), or batch prioritized routing
 * (fairseq's {@code batch_prioritized_routing}): by falling probability of the first choice, ties in token order.
 * One per gate: the order and the sort's scratch are kept and grow to the most tokens seen, and the sort is a
 * stable merge sort of token indices, so routing neither allocates nor boxes per token.
 */
final class SlotOrder {

    private int[] order = new int[0];
    private int[] scratch = new int[0];
    private double[] key = new double[0]; // the first choice's probability, per token

    /**
     * The first {@code tokens} entries of the order (the returned array may be longer); {@code choice} holds each
     * token's {@code k} choices, {@code probs} its probabilities over the {@code experts}.
     */
    int[] of(double[] probs, int tokens, int experts, int[] choice, int k, boolean prioritized) {
        if (order.length < tokens) {
            order = new int[tokens];
            scratch = new int[tokens];
            key = new double[tokens];
        }
        for (int n = 0; n < tokens; n++) {
            order[n] = n;
        }
        if (prioritized) {
            for (int n = 0; n < tokens; n++) {
                key[n] = probs[n * experts + choice[n * k]];
            }
            sort(0, tokens);
        }
        return order;
    }

    /** Sorts {@code order[from, to)} by falling key; stable, so equal keys stay in token order. */
    private void sort(int from, int to) {
        if (to - from < 2) {
            return;
        }
        int mid = (from + to) >>> 1;
        sort(from, mid);
        sort(mid, to);
        int a = from;
        int b = mid;
        for (int i = from; i < to; i++) {
            // Take from the right half only when strictly greater: ties keep the left (earlier) token first.
            scratch[i] = b < to && (a >= mid || key[order[b]] > key[order[a]]) ? order[b++] : order[a++];
        }
        System.arraycopy(scratch, from, order, from, to - from);
    }
}
