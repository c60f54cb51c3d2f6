package dev.tessera.worker.train;

/**
 * What one optimizer step reports; one line of metrics.jsonl. {@code commWaitSeconds} is the time the step
 * spent waiting for gradient reductions after backward, the part of communication not hidden behind compute.
 */
public record StepMetrics(long step, double loss, double auxLoss, double lr, double gradNorm,
                          double tokensPerSecond, double stepSeconds, double commWaitSeconds) {
}
