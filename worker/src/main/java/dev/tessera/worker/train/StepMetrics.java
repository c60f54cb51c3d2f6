package dev.tessera.worker.train;

/** What one optimizer step reports; one line of metrics.jsonl. */
public record StepMetrics(long step, double loss, double auxLoss, double lr, double gradNorm,
                          double tokensPerSecond, double stepSeconds) {
}
