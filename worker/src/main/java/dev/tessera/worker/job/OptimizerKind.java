package dev.tessera.worker.job;

/** Optimizers the config can name. */
public enum OptimizerKind {
    ADAMW,
    ADAFACTOR,
    CAME
}
