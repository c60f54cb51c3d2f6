package dev.tessera.worker.cluster;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * HMAC-SHA256, keyed by the job token, over what a member claims in Hazelcast: job id, rank, role, its member
 * UUID and its endpoint. Anyone who learns the cluster name can join and write the endpoint map; only a process
 * that holds the token can write an entry that verifies, and the UUID ties the entry to the member that wrote it.
 */
final class EndpointProof {

    private static final HexFormat HEX = HexFormat.of();

    private final String jobId;
    private final SecretKeySpec key;

    EndpointProof(String jobId, String token) {
        this.jobId = jobId;
        this.key = new SecretKeySpec(token.getBytes(StandardCharsets.UTF_8), "HmacSHA256");
    }

    String sign(int rank, String role, String memberUuid, String endpoint) {
        return HEX.formatHex(mac(rank, role, memberUuid, endpoint));
    }

    boolean verify(int rank, String role, String memberUuid, String endpoint, String macHex) {
        byte[] claimed;
        try {
            claimed = HEX.parseHex(macHex);
        } catch (IllegalArgumentException notHex) {
            return false;
        }
        return MessageDigest.isEqual(claimed, mac(rank, role, memberUuid, endpoint));
    }

    private byte[] mac(int rank, String role, String memberUuid, String endpoint) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(key);
            // Fields joined by NUL, which none of them contains: no two claims share a message.
            String message = String.join("\0", jobId, Integer.toString(rank), role, memberUuid, endpoint);
            return mac.doFinal(message.getBytes(StandardCharsets.UTF_8));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is part of every Java runtime", e);
        }
    }
}
