package dev.tessera.coordinator.config;

/**
 * Optimizers the config can name. Adafactor and CAME are listed so configs written for them fail with "not
 * implemented yet" rather than "unknown"; flip {@code implemented} when they land.
 */
public enum OptimizerKind {
    ADAMW(true),
    ADAFACTOR(false),
    CAME(false);

    private final boolean implemented;

    OptimizerKind(boolean implemented) {
        this.implemented = implemented;
    }

    public boolean implemented() {
        return implemented;
    }
}
