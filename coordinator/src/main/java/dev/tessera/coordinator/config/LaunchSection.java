package dev.tessera.coordinator.config;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code launch:} where the workers run and what each may use. {@code workers} is the number of worker
 * processes that will exist (0 = exactly the mesh's world size); planning requires it to equal the world size.
 * Ports are the first of a range: Hazelcast takes {@code hazelcast_port} upwards, Aeron UDP endpoints
 * {@code aeron_port} upwards (IPC between processes of one host needs none).
 */
public record LaunchSection(LauncherKind launcher, int workers, int workerMemoryMb, int hazelcastPort,
                            int aeronPort) {

    public static LaunchSection defaults() {
        return new LaunchSection(LauncherKind.LOCAL, 0, 4096, 5701, 40123);
    }

    /** The worker count planning works with: the configured one, or the world size when 0. */
    public int workersFor(MeshSection mesh) {
        return workers == 0 ? mesh.world() : workers;
    }

    static LaunchSection read(ConfigValues v) {
        return new LaunchSection(v.getEnum("launch.launcher", LauncherKind.class), v.getInt("launch.workers"),
                v.getInt("launch.worker_memory_mb"), v.getInt("launch.hazelcast_port"),
                v.getInt("launch.aeron_port"));
    }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("launcher", ConfigValues.yamlName(launcher));
        m.put("workers", workers);
        m.put("worker_memory_mb", workerMemoryMb);
        m.put("hazelcast_port", hazelcastPort);
        m.put("aeron_port", aeronPort);
        return m;
    }
}
