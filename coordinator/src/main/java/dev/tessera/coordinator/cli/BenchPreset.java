package dev.tessera.coordinator.cli;

/** Model shapes {@code tessera bench model} can time: dense, mixture-of-experts, and wide dense. */
public enum BenchPreset {
    DENSE,
    MOE,
    WIDE
}
