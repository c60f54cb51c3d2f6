package dev.tessera.coordinator.run;

import java.util.Map;
import java.util.OptionalDouble;

/**
 * What summary.json records about a finished run. Optional values are written as null when unknown:
 * {@code evalLoss} when evaluation is off, the entropies when the data source cannot compute them.
 *
 * @param entropyFloor   exact per-token entropy of the source (nats), the lowest loss any model can reach
 * @param unigramEntropy entropy of the token frequencies (nats), the loss of a model that ignores context
 * @param stateBytes     bytes of optimizer state this process held ({@code Optimizer.stateBytes()})
 * @param config         the full resolved job config ({@code JobConfig.toMap()})
 */
public record RunSummary(long steps, long tokens, double finalLoss, OptionalDouble evalLoss,
                         OptionalDouble entropyFloor, OptionalDouble unigramEntropy, double tokensPerSecond,
                         double wallSeconds, long params, long stateBytes, Map<String, Object> config) {
}
