package dev.tessera.worker.model;

/**
 * How MoE layers route ({@code model.gate} and its settings; ALGORITHMS.md section 7).
 *
 * @param gate               topk (Mixtral, dropless), switch (top-1) or gshard (top-2, random routing)
 * @param capacityFactor     slots per expert in training, as a multiple of an even share (switch, gshard)
 * @param evalCapacityFactor the same in evaluation
 * @param zCoef              weight of the ST-MoE router z-loss, mean over tokens of logsumexp(logits)^2 (0: off)
 */
public record Routing(String gate, double capacityFactor, double evalCapacityFactor, double zCoef) {

    /** Mixtral's dropless top-k without a z-loss: what a model config without routing settings means. */
    public static final Routing DEFAULT = new Routing("topk", 1.25, 2.0, 0.0);

    /** Whether tokens can be dropped: every gate but dropless top-k has a capacity. */
    public boolean hasCapacity() {
        return !gate.equals("topk");
    }
}
