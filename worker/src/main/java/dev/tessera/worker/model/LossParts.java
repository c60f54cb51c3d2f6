package dev.tessera.worker.model;

/**
 * The parts of the training loss of one step: mean cross-entropy over the targets, the sum over MoE layers of their
 * (unscaled) load-balancing losses, and the sum over MoE layers of their (unscaled) router z-losses.
 */
public record LossParts(double crossEntropy, double aux, double zLoss) {
    /** The optimised loss: crossEntropy + auxCoef * aux + zCoef * zLoss. */
    public double total(double auxCoef, double zCoef) {
        return crossEntropy + auxCoef * aux + zCoef * zLoss;
    }
}
