package dev.tessera.coordinator.config;

import dev.tessera.worker.parallel.Mesh;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code mesh:} data-, sequence- and expert-parallel degrees; the world size is {@code dp x sp}. The default is
 * two data-parallel workers, so that {@code tessera train} runs a real local cluster.
 */
public record MeshSection(int dp, int sp, int ep) {

    public static MeshSection defaults() {
        return new MeshSection(2, 1, 1);
    }

    public int world() {
        return dp * sp;
    }

    /** Only for a validated config. */
    public Mesh toMesh() {
        return new Mesh(dp, sp, ep);
    }

    static MeshSection read(ConfigValues v) {
        return new MeshSection(v.getInt("mesh.dp"), v.getInt("mesh.sp"), v.getInt("mesh.ep"));
    }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("dp", dp);
        m.put("sp", sp);
        m.put("ep", ep);
        return m;
    }
}
