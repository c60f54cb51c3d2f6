package dev.tessera.coordinator.spark;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The small TCP protocol between the driver ({@link SparkLauncher}) and its barrier tasks ({@link BarrierWorkerTask}).
 * The driver greets with a random challenge; the task answers with its HMAC under the launch secret (which
 * travels in the task's closure, never in a Spark conf or on a command line), then its rank, machine and address.
 * Once every task has reported in, the driver sends each its worker's JVM flags, arguments and environment (the
 * job token), and the task answers with the worker's pid and, at the end, its exit code and last words. A closed
 * connection tells either side that the other is gone.
 */
final class LaunchChannel {

    static final int CHALLENGE_BYTES = 32;
    static final byte START = 'S';
    static final byte PID = 'P';
    static final byte EXIT = 'X';

    private LaunchChannel() {
    }

    static byte[] answer(byte[] secret, byte[] challenge) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret, "HmacSHA256"));
            return mac.doFinal(challenge);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is not available in this JVM", e);
        }
    }

    static boolean answers(byte[] secret, byte[] challenge, byte[] answer) {
        return MessageDigest.isEqual(answer(secret, challenge), answer);
    }

    static void writeList(DataOutputStream out, List<String> items) throws IOException {
        out.writeInt(items.size());
        for (String s : items) {
            out.writeUTF(s);
        }
    }

    static List<String> readList(DataInputStream in) throws IOException {
        int n = boundedCount(in.readInt());
        List<String> items = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            items.add(in.readUTF());
        }
        return items;
    }

    static void writeMap(DataOutputStream out, Map<String, String> map) throws IOException {
        out.writeInt(map.size());
        for (Map.Entry<String, String> e : map.entrySet()) {
            out.writeUTF(e.getKey());
            out.writeUTF(e.getValue());
        }
    }

    static Map<String, String> readMap(DataInputStream in) throws IOException {
        int n = boundedCount(in.readInt());
        Map<String, String> map = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            map.put(in.readUTF(), in.readUTF());
        }
        return map;
    }

    /** A count read off the wire is checked before anything is sized by it. */
    private static int boundedCount(int n) throws IOException {
        if (n < 0 || n > 10_000) {
            throw new IOException("a launch message announced " + n + " items; the limit is 10000");
        }
        return n;
    }
}
