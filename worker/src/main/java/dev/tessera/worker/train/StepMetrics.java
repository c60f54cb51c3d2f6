package dev.tessera.worker.train;

import dev.tessera.worker.model.MoeStats;
import java.util.Map;

/**
 * What one optimizer step reports; one line of metrics.jsonl. {@code commWaitSeconds} is the time the step
 * spent waiting for gradient reductions after backward, the part of communication not hidden behind compute;
 * {@code attentionWaitSeconds} what attention waited for the other sequence-parallel ranks (rank 0's);
 * {@code wireBytes} the data bytes rank 0 handed to the transport during the step;
 * {@code moe} how the MoE layers routed the global batch; {@code compressionChoice} L-GreCo's setting per compressed
 * layer when a new choice came into force in this step, else empty.
 */
public record StepMetrics(long step, double loss, double auxLoss, double lr, double gradNorm,
                          double tokensPerSecond, double stepSeconds, double commWaitSeconds,
                          double attentionWaitSeconds, long wireBytes, MoeStats moe,
                          Map<String, Double> compressionChoice) {

    /** A step without a new compression choice. */
    public StepMetrics(long step, double loss, double auxLoss, double lr, double gradNorm, double tokensPerSecond,
                       double stepSeconds, double commWaitSeconds, double attentionWaitSeconds, long wireBytes,
                       MoeStats moe) {
        this(step, loss, auxLoss, lr, gradNorm, tokensPerSecond, stepSeconds, commWaitSeconds, attentionWaitSeconds,
                wireBytes, moe, Map.of());
    }

    /** A step of a model without MoE layers or sequence parallelism. */
    public StepMetrics(long step, double loss, double auxLoss, double lr, double gradNorm, double tokensPerSecond,
                       double stepSeconds, double commWaitSeconds) {
        this(step, loss, auxLoss, lr, gradNorm, tokensPerSecond, stepSeconds, commWaitSeconds, 0, 0, MoeStats.NONE);
    }
}
