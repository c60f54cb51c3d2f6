package dev.tessera.worker.model;

/**
 * How one step's MoE layers routed the global batch. Per MoE layer, in block order, {@code layers} holds
 * {@code [block index, fraction of (token, choice) assignments dropped, aux loss, z-loss, all-to-all bytes sent,
 * seconds waited in all-to-all, load of expert 0 .. E-1]}, an expert's load being its share of the assignments asked
 * of the layer before any was dropped (1/E each when balanced). The all-to-all figures are the reporting rank's
 * (zero without expert parallelism): the bytes its rows took to other ranks, forward and backward, and the time its
 * exchanges blocked the step.
 */
public record MoeStats(int experts, double[] layers) {

    /** A dense model's. */
    public static final MoeStats NONE = new MoeStats(0, new double[0]);

    /** Numbers per layer before its loads. */
    static final int FIXED = 6;

    public int layerCount() {
        return experts == 0 ? 0 : layers.length / (FIXED + experts);
    }

    public int block(int i) {
        return (int) layers[i * (FIXED + experts)];
    }

    public double dropped(int i) {
        return layers[i * (FIXED + experts) + 1];
    }

    public double aux(int i) {
        return layers[i * (FIXED + experts) + 2];
    }

    public double zLoss(int i) {
        return layers[i * (FIXED + experts) + 3];
    }

    public double allToAllBytes(int i) {
        return layers[i * (FIXED + experts) + 4];
    }

    public double allToAllWaitSeconds(int i) {
        return layers[i * (FIXED + experts) + 5];
    }

    public double load(int i, int expert) {
        return layers[i * (FIXED + experts) + FIXED + expert];
    }

    /** The largest load over all layers and experts, times E: 1 when every layer is balanced, E when collapsed. */
    public double worstImbalance() {
        double worst = 0;
        for (int i = 0; i < layerCount(); i++) {
            for (int e = 0; e < experts; e++) {
                worst = Math.max(worst, load(i, e) * experts);
            }
        }
        return worst;
    }

    /** The fraction of assignments dropped over all MoE layers (each layer asks for the same number). */
    public double droppedFraction() {
        double sum = 0;
        for (int i = 0; i < layerCount(); i++) {
            sum += dropped(i);
        }
        return layerCount() == 0 ? 0 : sum / layerCount();
    }
}
