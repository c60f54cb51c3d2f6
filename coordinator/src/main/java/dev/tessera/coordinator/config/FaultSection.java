package dev.tessera.coordinator.config;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code fault:} how long a live worker may be silent. A worker that exits is seen at once and a stopped one
 * (SIGSTOP) within seconds, from its process state; a worker that runs but is starved (a loaded host, several
 * JVMs starting and collecting garbage at once) is warned about after {@code suspect_after_s} and called dead
 * after {@code dead_after_s}.
 */
public record FaultSection(int suspectAfterS, int deadAfterS) {

    public static FaultSection defaults() {
        return new FaultSection(60, 300);
    }

    static FaultSection read(ConfigValues v) {
        return new FaultSection(v.getInt("fault.suspect_after_s"), v.getInt("fault.dead_after_s"));
    }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("suspect_after_s", suspectAfterS);
        m.put("dead_after_s", deadAfterS);
        return m;
    }
}
