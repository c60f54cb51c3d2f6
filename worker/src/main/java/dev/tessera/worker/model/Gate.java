package dev.tessera.worker.model;

/**
 * How an MoE layer chooses experts from its router's probabilities ({@code model.gate}, ALGORITHMS.md section 7).
 * The layer owns the router, its softmax and the load-balancing and z losses; a gate says, for every token
 * {@code n} and choice {@code j < slots()}, which expert it picked, whether the choice keeps a capacity slot, and
 * with what weight the expert's output is added, and how a gradient on those weights reaches the probabilities.
 *
 * <p>Arrays are flat and row-major: {@code probs[n * E + e]} and {@code choice, kept, weight[n * k + j]}.
 */
public interface Gate {

    /** Choices per token, {@code k}. */
    int slots();

    /** Token slots per expert for {@code tokens} tokens at capacity factor {@code factor}; every token if dropless. */
    int capacity(int tokens, int experts, double factor);

    /**
     * Fills {@code choice}, {@code kept} and {@code weight} for {@code tokens} tokens, taking at most {@code capacity}
     * slots per expert in token order, and adds to {@code balance[e]} what counts towards expert {@code e}'s load
     * fraction {@code f_e} of the load-balancing loss. {@code uniform(n, stream)} is token {@code n}'s draw number
     * {@code stream} from U(0, 1) for random routing, a pure function of both so that a recomputed or resumed step
     * routes the same way.
     */
    void route(double[] probs, int tokens, int experts, int capacity, TokenUniforms uniform,
               int[] choice, boolean[] kept, double[] weight, double[] balance);

    /** What {@code balance} is divided by to make {@code f_e}: assignments per token counted, times tokens. */
    double balanceTotal(double tokens);

    /**
     * Adds to {@code dProbs[e]} the gradient of token {@code n}'s weights, given {@code dWeight} (zero for a dropped
     * choice), which choices were {@code kept}, and the probabilities its weights were made from.
     */
    void weightBackward(double[] probs, int n, int experts, int[] choice, boolean[] kept, double[] weight,
                        double[] dWeight, double[] dProbs);

    /** Token {@code n}'s draw number {@code stream}, uniform in [0, 1). */
    @FunctionalInterface
    interface TokenUniforms {
        double of(int n, int stream);
    }

    /** The gate named by {@code model.gate}. */
    static Gate named(String name, int topK, int experts) {
        return of(new Routing(name, 1, 1, 0, 0), topK, experts);
    }

    /** The gate {@code routing} names, with its options. */
    static Gate of(Routing routing, int topK, int experts) {
        String name = routing.gate();
        return switch (name) {
            case "topk" -> new TopKGate(topK);
            case "switch" -> new SwitchGate(experts, routing.batchPrioritized());
            case "gshard" -> new GShardGate(experts,
                    GShardGate.SecondExpert.valueOf(routing.secondExpert().toUpperCase(java.util.Locale.ROOT)),
                    routing.renormalizeAfterDrop(), routing.batchPrioritized());
            case "hyper" -> new HyperGate(topK);
            default -> throw new IllegalArgumentException("model.gate must be topk, switch, gshard or hyper, not "
                    + name);
        };
    }

    /**
     * Writes token {@code n}'s {@code k} most probable experts into {@code choice[n * k ...]}, most probable first;
     * ties go to the lower index.
     */
    static void pickTop(double[] probs, int n, int experts, int k, int[] choice) {
        int o = n * experts;
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int e = 0; e < experts; e++) {
                if (!takenBefore(choice, n * k, j, e) && (best < 0 || probs[o + e] > probs[o + best])) {
                    best = e; // strict '>' keeps the lower index on ties
                }
            }
            choice[n * k + j] = best;
        }
    }

    /**
     * Weights renormalised over the token's chosen experts, {@code w_j = p_j / sum_i p_i} (top-k, GShard), and
     * their backward: {@code dp_j += (dw_j - sum_i w_i dw_i) / sum_i p_i}. A dropped choice still counts in the sum
     * (GShard keeps the paper's weights after dropping) but has no gradient of its own.
     */
    static void renormalised(double[] probs, int n, int experts, int k, int[] choice, double[] weight) {
        double sum = 0;
        for (int j = 0; j < k; j++) {
            sum += probs[n * experts + choice[n * k + j]];
        }
        for (int j = 0; j < k; j++) {
            weight[n * k + j] = probs[n * experts + choice[n * k + j]] / sum;
        }
    }

    /**
     * Weights renormalised over the token's kept choices only (fairseq's and DeepSpeed's default after capacity
     * dropping): a token whose first choice was dropped puts weight 1 on its second; a dropped choice gets 0.
     */
    static void renormalisedOverKept(double[] probs, int n, int experts, int k, int[] choice, boolean[] kept,
                                     double[] weight) {
        double sum = 0;
        for (int j = 0; j < k; j++) {
            sum += kept[n * k + j] ? probs[n * experts + choice[n * k + j]] : 0;
        }
        for (int j = 0; j < k; j++) {
            weight[n * k + j] = kept[n * k + j] ? probs[n * experts + choice[n * k + j]] / sum : 0;
        }
    }

    /** The backward of {@link #renormalisedOverKept}. */
    static void renormalisedOverKeptBackward(double[] probs, int n, int experts, int k, int[] choice, boolean[] kept,
                                             double[] weight, double[] dWeight, double[] dProbs) {
        double sum = 0;
        double wdw = 0;
        for (int j = 0; j < k; j++) {
            if (kept[n * k + j]) {
                sum += probs[n * experts + choice[n * k + j]];
                wdw += weight[n * k + j] * dWeight[n * k + j];
            }
        }
        for (int j = 0; j < k; j++) {
            if (kept[n * k + j]) {
                dProbs[choice[n * k + j]] += (dWeight[n * k + j] - wdw) / sum;
            }
        }
    }

    /** The backward of {@link #renormalised}. */
    static void renormalisedBackward(double[] probs, int n, int experts, int k, int[] choice, double[] weight,
                                     double[] dWeight, double[] dProbs) {
        double sum = 0;
        double wdw = 0;
        for (int j = 0; j < k; j++) {
            sum += probs[n * experts + choice[n * k + j]];
            wdw += weight[n * k + j] * dWeight[n * k + j];
        }
        for (int j = 0; j < k; j++) {
            dProbs[choice[n * k + j]] += (dWeight[n * k + j] - wdw) / sum;
        }
    }

    private static boolean takenBefore(int[] choice, int base, int j, int e) {
        for (int i = 0; i < j; i++) {
            if (choice[base + i] == e) {
                return true;
            }
        }
        return false;
    }
}
