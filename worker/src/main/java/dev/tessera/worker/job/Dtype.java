package dev.tessera.worker.job;

/** Floating-point type of parameters and activations; float64 exists for gradient checks. */
public enum Dtype {
    FLOAT32,
    FLOAT64
}
