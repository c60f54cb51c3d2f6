package dev.tessera.coordinator.config;

import dev.tessera.worker.checkpoint.CheckpointRetention;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code checkpoint:} save every {@code every} steps (0 saves only at the end); keep the newest {@code keepLast}
 * complete checkpoints and, when {@code keepEvery} is above 0, also the newest one at or before each multiple of
 * {@code keepEvery} steps. The rest are deleted once a newer checkpoint is complete.
 */
public record CheckpointSection(int every, int keepLast, int keepEvery) {

    public static CheckpointSection defaults() {
        return new CheckpointSection(0, 3, 0);
    }

    /** The retention policy; valid once the config passed {@code JobConfigValidator}. */
    public CheckpointRetention retention() {
        return new CheckpointRetention(keepLast, keepEvery);
    }

    static CheckpointSection read(ConfigValues v) {
        return new CheckpointSection(v.getInt("checkpoint.every"), v.getInt("checkpoint.keep_last"),
                v.getInt("checkpoint.keep_every"));
    }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("every", every);
        m.put("keep_last", keepLast);
        m.put("keep_every", keepEvery);
        return m;
    }
}
