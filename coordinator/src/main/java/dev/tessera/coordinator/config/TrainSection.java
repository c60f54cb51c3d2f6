package dev.tessera.coordinator.config;

import java.util.LinkedHashMap;
import java.util.Map;

/** {@code train:} loop length, global batch and seed. */
public record TrainSection(int steps, int batchSize, int seqLen, long seed) {

    public static TrainSection defaults() {
        return new TrainSection(1500, 16, 128, 42);
    }

    static TrainSection read(ConfigValues v) {
        return new TrainSection(
                v.getInt("train.steps"),
                v.getInt("train.batch_size"),
                v.getInt("train.seq_len"),
                v.getLong("train.seed"));
    }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("steps", steps);
        m.put("batch_size", batchSize);
        m.put("seq_len", seqLen);
        m.put("seed", seed);
        return m;
    }
}
