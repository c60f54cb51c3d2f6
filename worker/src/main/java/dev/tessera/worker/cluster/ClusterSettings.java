package dev.tessera.worker.cluster;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * How a process joins a job's cluster. {@code seeds} are "host:port" addresses of
 * members to contact; {@code port} is this member's first port, tried upwards {@code portCount} times.
 * Heartbeats every second and a 5 s silence limit find a frozen member in about 5 s (STACK.md: 62 s by default).
 */
public record ClusterSettings(String jobId, String token, String bindHost, int port, int portCount,
                              List<String> seeds, int heartbeatSeconds, int maxNoHeartbeatSeconds) {

    public ClusterSettings {
        if (jobId == null || jobId.isBlank()) {
            throw new IllegalArgumentException("job id must not be blank");
        }
        if (token == null || token.isEmpty()) {
            throw new IllegalArgumentException("job token must not be empty");
        }
        seeds = List.copyOf(seeds);
    }

    /** All members on loopback, ports {@code [firstPort, firstPort + members)}. */
    public static ClusterSettings loopback(String jobId, String token, int firstPort, int members) {
        List<String> seeds = new ArrayList<>();
        for (int port = firstPort; port <= firstPort + members; port++) {
            seeds.add("127.0.0.1:" + port);
        }
        return new ClusterSettings(jobId, token, "127.0.0.1", firstPort, members + 1, seeds, 1, 5);
    }

    /**
     * Hazelcast's cluster name: the job id plus a digest of the token. Open-source Hazelcast has no member
     * credentials, and members whose cluster names differ refuse each other, so the token gates the join without
     * ever being sent.
     */
    public String clusterName() {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8));
            return "tessera-" + jobId + "-" + HexFormat.of().formatHex(digest, 0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
        }
    }
}
