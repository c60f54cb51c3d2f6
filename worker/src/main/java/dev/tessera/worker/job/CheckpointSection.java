package dev.tessera.worker.job;

import dev.tessera.worker.checkpoint.CheckpointRetention;

/**
 * {@code checkpoint:} save every {@code every} steps (0 saves only at the end); keep the newest {@code keepLast}
 * complete checkpoints and, when {@code keepEvery} is above 0, also the newest one at or before each multiple of
 * {@code keepEvery} steps. The rest are deleted once a newer checkpoint is complete.
 */
public record CheckpointSection(int every, int keepLast, int keepEvery) {

    public static CheckpointSection defaults() {
        return new CheckpointSection(0, 3, 0);
    }

    /** The retention policy; valid once the config passed validation. */
    public CheckpointRetention retention() {
        return new CheckpointRetention(keepLast, keepEvery);
    }
}
