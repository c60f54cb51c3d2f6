package dev.tessera.optimizers;

/** Linear warm-up to {@code peak}, then cosine decay to {@code floor} at {@code totalSteps}. */
public record LrSchedule(double peak, double floor, long warmupSteps, long totalSteps) {

    /** Learning rate of 1-based optimizer step {@code step}. */
    public double at(long step) {
        if (warmupSteps > 0 && step <= warmupSteps) {
            return peak * step / warmupSteps;
        }
        long decaySteps = Math.max(1, totalSteps - warmupSteps);
        double progress = Math.min(1.0, (double) (step - warmupSteps) / decaySteps);
        return floor + 0.5 * (peak - floor) * (1.0 + Math.cos(Math.PI * progress));
    }
}
