package dev.tessera.worker.model;

/**
 * The two parts of the training loss of one step: mean cross-entropy over the targets and the sum over MoE
 * layers of their (unscaled) load-balancing losses.
 */
public record LossParts(double crossEntropy, double aux) {
    /** The optimised loss: crossEntropy + auxCoef * aux. */
    public double total(double auxCoef) {
        return crossEntropy + auxCoef * aux;
    }
}
