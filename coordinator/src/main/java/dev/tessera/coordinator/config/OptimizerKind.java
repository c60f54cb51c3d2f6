package dev.tessera.coordinator.config;

/**
 * Optimizers the config can name. An optimizer can be listed before it lands, with {@code implemented} false, so
 * configs written for it fail with "not implemented yet" rather than "unknown".
 */
public enum OptimizerKind {
    ADAMW(true),
    ADAFACTOR(true),
    CAME(true);

    private final boolean implemented;

    OptimizerKind(boolean implemented) {
        this.implemented = implemented;
    }

    public boolean implemented() {
        return implemented;
    }
}
