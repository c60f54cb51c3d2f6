package dev.tessera.coordinator.config;

import java.util.LinkedHashMap;
import java.util.Map;

/** {@code eval:} validation every {@code every} steps (0 = never) over {@code batches} batches. */
public record EvalSection(int every, int batches) {

    public static EvalSection defaults() {
        return new EvalSection(250, 8);
    }

    static EvalSection read(ConfigValues v) {
        return new EvalSection(v.getInt("eval.every"), v.getInt("eval.batches"));
    }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("every", every);
        m.put("batches", batches);
        return m;
    }
}
