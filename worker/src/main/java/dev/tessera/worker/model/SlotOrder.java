package dev.tessera.worker.model;

import java.util.Arrays;
import java.util.Comparator;

/**
 * The order in which tokens take capacity slots: token order (GShard, Switch), or batch prioritized routing
 * (fairseq's {@code batch_prioritized_routing}): by falling probability of the first choice, ties in token order.
 */
final class SlotOrder {

    private SlotOrder() {
    }

    /** Fills and returns {@code reuse} (grown if needed) with the first {@code tokens} entries of the order. */
    static int[] of(double[] probs, int tokens, int experts, int[] choice, int k, boolean prioritized, int[] reuse) {
        int[] order = reuse.length >= tokens ? reuse : new int[tokens];
        for (int n = 0; n < tokens; n++) {
            order[n] = n;
        }
        if (prioritized) {
            Integer[] boxed = new Integer[tokens]; // once per routing, not per element of a hot loop
            for (int n = 0; n < tokens; n++) {
                boxed[n] = n;
            }
            Arrays.sort(boxed, Comparator.comparingDouble((Integer n) -> -probs[n * experts + choice[n * k]])
                    .thenComparingInt(n -> n));
            for (int n = 0; n < tokens; n++) {
                order[n] = boxed[n];
            }
        }
        return order;
    }
}
