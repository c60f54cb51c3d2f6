package dev.tessera.coordinator.config;

import java.util.LinkedHashMap;
import java.util.Map;

/** {@code train:} loop length, global batch and seed; {@code threads: 0} means all cores. */
public record TrainSection(int steps, int batchSize, int seqLen, long seed, int threads) {

    public static TrainSection defaults() {
        return new TrainSection(600, 16, 128, 42, 0);
    }

    /** Threads to use, resolving 0 to the machine's core count. */
    public int effectiveThreads() {
        return threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
    }

    static TrainSection read(ConfigValues v) {
        return new TrainSection(
                v.getInt("train.steps"),
                v.getInt("train.batch_size"),
                v.getInt("train.seq_len"),
                v.getLong("train.seed"),
                v.getInt("train.threads"));
    }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("steps", steps);
        m.put("batch_size", batchSize);
        m.put("seq_len", seqLen);
        m.put("seed", seed);
        m.put("threads", threads);
        return m;
    }
}
