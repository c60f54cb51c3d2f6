package dev.tessera.coordinator;

import dev.tessera.comm.UserInputException;
import java.io.BufferedReader;
import java.io.IOException;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.function.IntUnaryOperator;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class PortPickerTest {

    private static final String HOST = "127.0.0.1";

    /** Draws the given offsets in order, then the last one forever. */
    private static IntUnaryOperator drawing(int... offsets) {
        Deque<Integer> left = new ArrayDeque<>();
        for (int o : offsets) {
            left.add(o);
        }
        return bound -> {
            int o = left.size() > 1 ? left.poll() : left.peek();
            assertTrue(o < bound, "offset " + o + " past the bound " + bound);
            return o;
        };
    }

    @Test
    void picksRangesThatBindAndDoNotOverlap() throws IOException {
        PortPicker picker = PortPicker.onThisHost();
        for (int i = 0; i < 5; i++) {
            PortPicker.Ports ports = picker.pick(HOST, 5, 0, 0);
            assertTrue(ports.hazelcast() >= PortPicker.LOW && ports.hazelcast() + 4 <= PortPicker.HIGH, ports.toString());
            assertTrue(ports.aeron() >= PortPicker.LOW && ports.aeron() + 4 <= PortPicker.HIGH, ports.toString());
            assertTrue(ports.hazelcast() + 5 <= ports.aeron() || ports.aeron() + 5 <= ports.hazelcast(),
                    "the ranges overlap: " + ports);
            int[] ephemeral = PortPicker.ephemeralRange();
            if (ephemeral != null && (ephemeral[0] > PortPicker.LOW || ephemeral[1] < PortPicker.HIGH)) {
                assertTrue(ports.hazelcast() + 4 < ephemeral[0] || ports.hazelcast() > ephemeral[1], ports.toString());
                assertTrue(ports.aeron() + 4 < ephemeral[0] || ports.aeron() > ephemeral[1], ports.toString());
            }
            // What it returned binds: TCP listeners for Hazelcast, UDP sockets for Aeron.
            InetAddress loopback = InetAddress.getByName(HOST);
            for (int p = 0; p < 5; p++) {
                try (ServerSocket tcp = new ServerSocket()) {
                    tcp.bind(new InetSocketAddress(loopback, ports.hazelcast() + p));
                }
                try (DatagramSocket udp = new DatagramSocket(new InetSocketAddress(loopback, ports.aeron() + p))) {
                    assertEquals(ports.aeron() + p, udp.getLocalPort());
                }
            }
        }
    }

    @Test
    void skipsARangeWithATakenTcpPort() throws IOException {
        int[] window = {PortPicker.LOW, PortPicker.HIGH};
        // First candidate: whatever the system gives us, held open on its last port; the second: a range of our own.
        try (ServerSocket first = bindTcpInWindow(window)) {
            int taken = first.getLocalPort();
            int firstCandidate = taken - 2; // the taken port is the third of that 3-port range
            int second = freeRange(3, firstCandidate);
            PortPicker picker = new PortPicker(drawing(firstCandidate - window[0], second - window[0]),
                    List.of(window));
            int picked = picker.firstFree("launch.hazelcast_port", HOST, 3, false, 0);
            assertNotEquals(firstCandidate, picked);
            assertEquals(second, picked);
            assertFalse(picked <= taken && taken < picked + 3);
        }
    }

    @Test
    void skipsARangeWithATakenUdpPort() throws IOException {
        int[] window = {PortPicker.LOW, PortPicker.HIGH};
        try (DatagramSocket first = bindUdpInWindow(window)) {
            int firstCandidate = first.getLocalPort();
            int second = freeRange(4, firstCandidate);
            PortPicker picker = new PortPicker(drawing(firstCandidate - window[0], second - window[0]),
                    List.of(window));
            assertEquals(second, picker.firstFree("launch.aeron_port", HOST, 4, true, 0));
        }
    }

    @Test
    void keepsClearOfTheOtherRange() throws IOException {
        int[] window = {PortPicker.LOW, PortPicker.HIGH};
        int hazelcast = freeRange(3, 0);
        int aeron = freeRange(3, hazelcast);
        // The picked Hazelcast range is drawn again for Aeron first: it must be skipped even though UDP is free there.
        PortPicker picker = new PortPicker(drawing(hazelcast - window[0], hazelcast + 1 - window[0],
                aeron - window[0]), List.of(window));
        PortPicker.Ports ports = picker.pick(HOST, 3, 0, 0);
        assertEquals(new PortPicker.Ports(hazelcast, aeron), ports);
        // An explicit port is used as it is, and the picked range keeps clear of it.
        picker = new PortPicker(drawing(hazelcast + 2 - window[0], aeron - window[0]), List.of(window));
        assertEquals(new PortPicker.Ports(aeron, hazelcast), picker.pick(HOST, 3, 0, hazelcast));
    }

    @Test
    void explicitPortsAreUsedAsTheyAre() {
        PortPicker picker = new PortPicker(bound -> {
            throw new AssertionError("nothing to draw");
        }, List.of(new int[] {PortPicker.LOW, PortPicker.HIGH}));
        assertEquals(new PortPicker.Ports(5701, 40123), picker.pick(HOST, 3, 5701, 40123));
    }

    @Test
    void failsNamingTheKeyWhenNothingIsFree() throws IOException {
        try (ServerSocket held = bindTcpInWindow(new int[] {PortPicker.LOW, PortPicker.HIGH})) {
            int port = held.getLocalPort();
            PortPicker picker = new PortPicker(bound -> 0, List.of(new int[] {port, port}));
            UserInputException e = assertThrows(UserInputException.class,
                    () -> picker.firstFree("launch.hazelcast_port", HOST, 1, false, 0));
            assertTrue(e.getMessage().startsWith("launch.hazelcast_port: found no 1 consecutive free TCP ports on "
                    + HOST + " in " + PortPicker.TRIES + " random tries within " + port + ".." + port
                    + "; set launch.hazelcast_port to the first of 1 free ports"), e.getMessage());
            assertEquals(1, e.getMessage().lines().count());
        }
    }

    @Test
    void readsTheKernelsEphemeralRange() throws IOException {
        Path file = Path.of("/proc/sys/net/ipv4/ip_local_port_range");
        assumeTrue(Files.isReadable(file), "no " + file + " on this machine");
        String[] expected;
        try (BufferedReader reader = Files.newBufferedReader(file)) {
            expected = reader.readLine().trim().split("\\s+");
        }
        int[] range = PortPicker.ephemeralRange();
        assertNotNull(range, "the range was not read");
        assertEquals(Integer.parseInt(expected[0]), range[0]);
        assertEquals(Integer.parseInt(expected[1]), range[1]);
    }

    @Test
    void windowsLeaveOutTheEphemeralRange() {
        assertEquals("20000..32767", describe(PortPicker.windows(20000, 60999, new int[] {32768, 60999})));
        assertEquals("20000..32767 and 50001..60999",
                describe(PortPicker.windows(20000, 60999, new int[] {32768, 50000})));
        assertEquals("20000..60999", describe(PortPicker.windows(20000, 60999, new int[] {1024, 65535})));
        assertEquals("20000..60999", describe(PortPicker.windows(20000, 60999, null)));
    }

    private static String describe(List<int[]> windows) {
        StringBuilder b = new StringBuilder();
        for (int[] w : windows) {
            b.append(b.length() == 0 ? "" : " and ").append(w[0]).append("..").append(w[1]);
        }
        return b.toString();
    }

    /** A TCP listener on loopback at a port of {@code window} with two ports below it, found by trying. */
    private static ServerSocket bindTcpInWindow(int[] window) throws IOException {
        for (int port = window[0] + 2 + (int) (ProcessHandle.current().pid() % 5000); port <= window[1]; port += 7) {
            ServerSocket s = new ServerSocket();
            try {
                s.bind(new InetSocketAddress(InetAddress.getByName(HOST), port));
                return s;
            } catch (IOException taken) {
                s.close();
            }
        }
        throw new IllegalStateException("no free port in the window");
    }

    private static DatagramSocket bindUdpInWindow(int[] window) throws IOException {
        for (int port = window[0] + (int) (ProcessHandle.current().pid() % 5000); port <= window[1]; port += 7) {
            try {
                return new DatagramSocket(new InetSocketAddress(InetAddress.getByName(HOST), port));
            } catch (IOException taken) {
                // next
            }
        }
        throw new IllegalStateException("no free port in the window");
    }

    /** The first port of a range of {@code count} free for TCP and UDP, well away from {@code awayFrom}. */
    private static int freeRange(int count, int awayFrom) throws IOException {
        InetAddress loopback = InetAddress.getByName(HOST);
        for (int first = awayFrom == 0 ? 25000 : awayFrom + 100; first + count <= PortPicker.HIGH; first += 17) {
            if (PortPicker.free(loopback, first, count, true) && PortPicker.free(loopback, first, count, false)) {
                return first;
            }
        }
        throw new IllegalStateException("no free range");
    }
}
