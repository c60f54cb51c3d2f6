package dev.tessera.worker.job;

/** {@code restart:} how often a failed job is relaunched from its last complete checkpoint (0 = never). */
public record RestartSection(int maxRestarts) {

    public static RestartSection defaults() {
        return new RestartSection(0);
    }
}
