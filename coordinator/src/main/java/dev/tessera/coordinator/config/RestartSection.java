package dev.tessera.coordinator.config;

import java.util.LinkedHashMap;
import java.util.Map;

/** {@code restart:} how often a failed job is relaunched from its last complete checkpoint (0 = never). */
public record RestartSection(int maxRestarts) {

    public static RestartSection defaults() {
        return new RestartSection(0);
    }

    static RestartSection read(ConfigValues v) {
        return new RestartSection(v.getInt("restart.max_restarts"));
    }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("max_restarts", maxRestarts);
        return m;
    }
}
