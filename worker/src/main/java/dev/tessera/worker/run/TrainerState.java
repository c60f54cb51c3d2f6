package dev.tessera.worker.run;

import dev.tessera.worker.parallel.Mesh;
import java.util.LinkedHashMap;
import java.util.Map;

/** {@code trainer_state.json}: what a resume needs besides tensors (step, data cursor, mesh, the job config). */
public final class TrainerState {

    private TrainerState() {
    }

    public static Map<String, Object> of(long step, Mesh mesh, Map<String, Object> job) {
        Map<String, Object> state = new LinkedHashMap<>();
        state.put("step", step);
        state.put("data_cursor", Map.of("next_step", step + 1));
        state.put("rng", Map.of("note", "every random draw is a pure function of (seed, step, sample)"));
        state.put("mesh", Map.of("dp", mesh.dp(), "sp", mesh.sp(), "ep", mesh.ep(), "world", mesh.world()));
        state.put("job", job);
        return state;
    }
}
