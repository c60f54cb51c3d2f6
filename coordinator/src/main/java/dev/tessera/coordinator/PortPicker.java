package dev.tessera.coordinator;

import dev.tessera.comm.UserInputException;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntUnaryOperator;

/**
 * Picks the job's ports where {@code launch.hazelcast_port} or {@code launch.aeron_port} is 0 (the default), as
 * torchrun does with port 0: once per launch attempt, a random first port such that the whole range the job needs is
 * free right now on the bind address, TCP for Hazelcast and UDP for Aeron. Candidates lie in
 * {@value #LOW}..{@value #HIGH} outside the kernel's ephemeral range (outgoing connections take their ports from
 * there, so a range chosen inside it could be taken between the probe and the bind). A range is free when every one
 * of its ports can be bound without {@code SO_REUSEADDR}; after {@value #TRIES} ranges that were not, the launch
 * fails naming the key. An explicit nonzero port is used as it is.
 */
final class PortPicker {

    /** Where candidates come from (and the ephemeral range is cut out of). */
    static final int LOW = 20000;
    static final int HIGH = 60999;
    /** How many random ranges are probed before giving up. */
    static final int TRIES = 64;

    private static final Path EPHEMERAL = Path.of("/proc/sys/net/ipv4/ip_local_port_range");

    /** The first ports the job uses: Hazelcast's (TCP) and Aeron's (UDP), each the first of the job's range. */
    record Ports(int hazelcast, int aeron) {
    }

    private final IntUnaryOperator draw;
    private final List<int[]> windows;

    /**
     * {@code draw} returns a value in {@code [0, bound)} for a bound it is given (the random source, injectable for
     * tests); {@code windows} are the inclusive port ranges candidates may lie in.
     */
    PortPicker(IntUnaryOperator draw, List<int[]> windows) {
        this.draw = draw;
        this.windows = List.copyOf(windows);
    }

    /** Random candidates in {@value #LOW}..{@value #HIGH} outside this host's ephemeral range. */
    static PortPicker onThisHost() {
        SecureRandom random = new SecureRandom();
        return new PortPicker(random::nextInt, windows(LOW, HIGH, ephemeralRange()));
    }

    /**
     * The job's ports for {@code count} processes (world size + 1) on {@code host}: {@code hazelcastPort} and
     * {@code aeronPort} where nonzero, otherwise free ranges that do not overlap each other.
     */
    Ports pick(String host, int count, int hazelcastPort, int aeronPort) {
        int hazelcast = hazelcastPort != 0 ? hazelcastPort
                : firstFree("launch.hazelcast_port", host, count, false, aeronPort);
        int aeron = aeronPort != 0 ? aeronPort : firstFree("launch.aeron_port", host, count, true, hazelcast);
        return new Ports(hazelcast, aeron);
    }

    /**
     * The first port of {@code count} consecutive ports on {@code host} that are free ({@code udp}: as datagram
     * sockets, else as TCP listeners) and do not overlap {@code [avoid, avoid + count)} (avoid 0: nothing to avoid).
     */
    int firstFree(String key, String host, int count, boolean udp, int avoid) {
        InetAddress address;
        try {
            address = InetAddress.getByName(host);
        } catch (IOException e) {
            throw new UserInputException("launch.bind_address: cannot resolve " + host + " (" + e.getMessage() + ")");
        }
        long candidates = 0;
        for (int[] w : windows) {
            candidates += Math.max(0, w[1] - w[0] + 2 - count);
        }
        if (candidates > 0) {
            for (int attempt = 0; attempt < TRIES; attempt++) {
                int first = nth(draw.applyAsInt((int) Math.min(candidates, Integer.MAX_VALUE)), count);
                boolean overlaps = avoid != 0 && first < avoid + count && avoid < first + count;
                if (!overlaps && free(address, first, count, udp)) {
                    return first;
                }
            }
        }
        throw new UserInputException(key + ": found no " + count + " consecutive free " + (udp ? "UDP" : "TCP")
                + " ports on " + host + " in " + TRIES + " random tries within " + describe(windows) + "; set " + key
                + " to the first of " + count + " free ports");
    }

    /** The {@code n}th possible first port, counting through the windows in order. */
    private int nth(int n, int count) {
        int left = n;
        for (int[] w : windows) {
            int starts = Math.max(0, w[1] - w[0] + 2 - count);
            if (left < starts) {
                return w[0] + left;
            }
            left -= starts;
        }
        throw new IllegalArgumentException("draw returned " + n + ", past the candidates");
    }

    /** Whether every port of {@code [first, first + count)} binds now; all are held until the last is checked. */
    static boolean free(InetAddress address, int first, int count, boolean udp) {
        List<Closeable> held = new ArrayList<>();
        try {
            for (int port = first; port < first + count; port++) {
                if (udp) {
                    DatagramSocket socket = new DatagramSocket(null);
                    held.add(socket);
                    socket.setReuseAddress(false);
                    socket.bind(new InetSocketAddress(address, port));
                } else {
                    ServerSocket socket = new ServerSocket();
                    held.add(socket);
                    socket.setReuseAddress(false);
                    socket.bind(new InetSocketAddress(address, port));
                }
            }
            return true;
        } catch (IOException taken) {
            return false;
        } finally {
            for (Closeable c : held) {
                try {
                    c.close();
                } catch (IOException ignored) {
                    // a probe that does not close leaves nothing bound that matters here
                }
            }
        }
    }

    /**
     * {@code low..high} without {@code ephemeral} (inclusive bounds; null: nothing to cut out). Where nothing is
     * left, the whole of {@code low..high}: probing still finds what is free.
     */
    static List<int[]> windows(int low, int high, int[] ephemeral) {
        List<int[]> out = new ArrayList<>();
        if (ephemeral == null) {
            out.add(new int[] {low, high});
            return out;
        }
        if (ephemeral[0] > low) {
            out.add(new int[] {low, Math.min(high, ephemeral[0] - 1)});
        }
        if (ephemeral[1] < high) {
            out.add(new int[] {Math.max(low, ephemeral[1] + 1), high});
        }
        out.removeIf(w -> w[0] > w[1]);
        if (out.isEmpty()) {
            out.add(new int[] {low, high});
        }
        return out;
    }

    /** The kernel's ephemeral port range, or null where it cannot be read (not Linux). */
    static int[] ephemeralRange() {
        // Read as a stream: Files.readString sizes its buffer by the file's reported size, wrong for /proc files
        // (it returned only the first character here).
        try (InputStream in = Files.newInputStream(EPHEMERAL)) {
            String[] parts = new String(in.readAllBytes(), StandardCharsets.US_ASCII).trim().split("\\s+");
            return new int[] {Integer.parseInt(parts[0]), Integer.parseInt(parts[1])};
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static String describe(List<int[]> windows) {
        List<String> parts = new ArrayList<>();
        windows.forEach(w -> parts.add(w[0] + ".." + w[1]));
        return String.join(" and ", parts);
    }
}
