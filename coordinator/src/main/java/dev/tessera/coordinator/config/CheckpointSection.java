package dev.tessera.coordinator.config;

import java.util.LinkedHashMap;
import java.util.Map;

/** {@code checkpoint:} save every {@code every} steps; 0 saves only at the end. */
public record CheckpointSection(int every) {

    public static CheckpointSection defaults() {
        return new CheckpointSection(0);
    }

    static CheckpointSection read(ConfigValues v) {
        return new CheckpointSection(v.getInt("checkpoint.every"));
    }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("every", every);
        return m;
    }
}
