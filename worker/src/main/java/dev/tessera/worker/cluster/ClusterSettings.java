package dev.tessera.worker.cluster;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How a process joins a job's cluster. {@code bindHost} is the one address this member binds and is reached at
 * (loopback for a single-host job); {@code seeds} are "host:port" addresses of members to contact; {@code port} is
 * this member's first port, tried upwards {@code portCount} times.
 * {@code deadAfterSeconds} is how long a member may be silent before Hazelcast removes it: minutes, because a
 * starved JVM (several JVMs starting and collecting garbage on a loaded host) is silent for seconds at a time.
 * A stopped worker is caught sooner by its host, from its process state (STACK.md gotcha 11).
 * {@code joinSeconds} bounds the join itself (Hazelcast's default is 300 s).
 */
public record ClusterSettings(String jobId, String token, String bindHost, int port, int portCount,
                              List<String> seeds, int deadAfterSeconds, int joinSeconds) {

    /** Joins on loopback take a second or two; a loaded host may take ten times that. */
    public static final int DEFAULT_JOIN_SECONDS = 60;

    /** The address of the single-host job, and the default bind address of every process. */
    public static final String LOOPBACK = "127.0.0.1";

    public ClusterSettings {
        if (jobId == null || jobId.isBlank()) {
            throw new IllegalArgumentException("job id must not be blank");
        }
        if (token == null || token.isEmpty()) {
            throw new IllegalArgumentException("job token must not be empty");
        }
        if (deadAfterSeconds < 2 || joinSeconds < 1) {
            throw new IllegalArgumentException("deadAfterSeconds must be >= 2 and joinSeconds >= 1");
        }
        seeds = List.copyOf(seeds);
    }

    /**
     * All members on loopback, ports {@code [firstPort, firstPort + members)}: one each, and every one of them a
     * seed. A port of the range held by another program would hang the join, so the range is no wider than needed
     * and is checked free before the job starts.
     */
    public static ClusterSettings loopback(String jobId, String token, int firstPort, int members,
                                           int deadAfterSeconds) {
        return member(jobId, token, LOOPBACK, firstPort, seeds(Collections.nCopies(members, LOOPBACK), firstPort),
                deadAfterSeconds);
    }

    /**
     * A member that binds {@code bindHost} and joins {@code seeds} (from {@link #seeds}). It tries as many ports
     * upwards from {@code firstPort} as there are seeds on its own address: members that share an address take
     * one port each, in whatever order they start.
     */
    public static ClusterSettings member(String jobId, String token, String bindHost, int firstPort,
                                         List<String> seeds, int deadAfterSeconds) {
        int sharing = (int) seeds.stream().filter(seed -> hostOf(seed).equals(bindHost)).count();
        if (sharing == 0) {
            throw new IllegalArgumentException("bind address " + bindHost + " is not among the seeds " + seeds);
        }
        return new ClusterSettings(jobId, token, bindHost, firstPort, sharing, seeds, deadAfterSeconds,
                DEFAULT_JOIN_SECONDS);
    }

    /**
     * The seed list of a job whose members bind {@code memberAddresses} (one entry per member, repeated where
     * members share an address): for each address, the ports {@code [firstPort, firstPort + members there)}.
     */
    public static List<String> seeds(List<String> memberAddresses, int firstPort) {
        Map<String, Integer> perAddress = new LinkedHashMap<>();
        for (String address : memberAddresses) {
            perAddress.merge(address, 1, Integer::sum);
        }
        List<String> seeds = new ArrayList<>();
        perAddress.forEach((address, count) -> {
            for (int port = firstPort; port < firstPort + count; port++) {
                seeds.add(address + ":" + port);
            }
        });
        return seeds;
    }

    /** The host of a "host:port" seed. */
    private static String hostOf(String seed) {
        int colon = seed.lastIndexOf(':');
        return colon < 0 ? seed : seed.substring(0, colon);
    }

    public ClusterSettings withJoinSeconds(int seconds) {
        return new ClusterSettings(jobId, token, bindHost, port, portCount, seeds, deadAfterSeconds, seconds);
    }

    /** The ports this job's members bind and contact. */
    public String portRange() {
        return port + ".." + (port + portCount - 1);
    }

    /**
     * Hazelcast's cluster name: the job id plus a digest of the token. Open-source Hazelcast has no member
     * credentials, and members whose cluster names differ refuse each other, so the token gates the join without
     * ever being sent. The name itself crosses the network in every join, so it keeps out mistakes, not
     * attackers: what a member may act on is proven separately ({@link EndpointProof}).
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
