package dev.tessera.coordinator;

import dev.tessera.comm.DriverMode;
import dev.tessera.coordinator.launch.LocalLauncher;
import dev.tessera.coordinator.launch.Placement;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Worker "hosts" on this machine: one network namespace per worker, each with a veth whose other end is on a
 * bridge in this process's namespace, addresses from the benchmarking range 198.18.0.0/15 (STACK.md). The
 * coordinator binds the bridge's address and each worker its namespace's, so Hazelcast and Aeron UDP really cross
 * interfaces and no worker can reach another over loopback. Names carry this JVM's pid: {@link #create} first
 * removes what a killed test JVM left, and {@link #close()} (also a shutdown hook) removes this one's.
 */
final class TestHosts implements AutoCloseable {

    private static final AtomicInteger COUNTER = new AtomicInteger();
    private static final String PID = Long.toString(ProcessHandle.current().pid(), 36);
    /** Our names: namespaces tessera-test-PID-N-rR, bridges tbPID-N, veths tvPID-N-R (links: at most 15 chars). */
    private static final Pattern OURS =
            Pattern.compile("^(?:tessera-test-([0-9a-z]{1,6})-\\d+-r\\d+|t[bv]([0-9a-z]{1,6})-\\d+(?:-\\d+)?)$");

    private final String bridge;
    private final List<String> namespaces = new ArrayList<>();
    private final String subnet;
    private final Thread cleanup = new Thread(this::removeAll, "tessera-test-hosts-cleanup");

    private TestHosts(String bridge, String subnet) {
        this.bridge = bridge;
        this.subnet = subnet;
    }

    /**
     * {@code workers} namespaces on one bridge; skips the calling test (an assumption, with the reason) where
     * namespaces cannot be made: not root, no {@code ip}, or the kernel refuses.
     */
    static TestHosts create(int workers) throws Exception {
        assumeTrue(run(List.of("ip", "-V")).code == 0, "no `ip` command (iproute2) on this machine");
        String uid = run(List.of("id", "-u")).output.strip();
        assumeTrue(uid.equals("0"), "network namespaces need root; this test runs as uid " + uid);
        sweepLeftovers();
        int n = COUNTER.incrementAndGet();
        TestHosts hosts = new TestHosts("tb" + PID + "-" + n, freeSubnet());
        Runtime.getRuntime().addShutdownHook(hosts.cleanup);
        try {
            hosts.ip("link", "add", hosts.bridge, "type", "bridge");
            hosts.ip("addr", "add", hosts.coordinatorAddress() + "/24", "dev", hosts.bridge);
            hosts.ip("link", "set", hosts.bridge, "up");
            for (int r = 0; r < workers; r++) {
                String ns = "tessera-test-" + PID + "-" + n + "-r" + r;
                String veth = "tv" + PID + "-" + n + "-" + r;
                hosts.ip("netns", "add", ns);
                hosts.namespaces.add(ns);
                hosts.ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns);
                hosts.ip("link", "set", veth, "master", hosts.bridge);
                hosts.ip("link", "set", veth, "up");
                hosts.ip("-n", ns, "addr", "add", hosts.workerAddress(r) + "/24", "dev", "eth0");
                hosts.ip("-n", ns, "link", "set", "eth0", "up");
                hosts.ip("-n", ns, "link", "set", "lo", "up");
            }
        } catch (Exception | AssertionError e) {
            hosts.close();
            assumeTrue(false, "cannot make network namespaces here: " + e.getMessage());
        }
        return hosts;
    }

    /** The bridge's address, in this process's namespace: where the coordinator binds. */
    String coordinatorAddress() {
        return subnet + ".1";
    }

    String workerAddress(int rank) {
        return subnet + "." + (rank + 2);
    }

    String namespace(int rank) {
        return namespaces.get(rank);
    }

    /** Worker JVMs exec'd under {@code ip netns exec}, each a host of its own with a media driver of its own. */
    LocalLauncher launcher(int workerMemoryMb) {
        String here = "test-coordinator-" + PID;
        List<Placement> workers = new ArrayList<>();
        for (int r = 0; r < namespaces.size(); r++) {
            workers.add(new Placement(namespaces.get(r), workerAddress(r), DriverMode.PER_PROCESS));
        }
        return new LocalLauncher(new Placement(here, coordinatorAddress(), DriverMode.SHARED_PER_HOST), workers,
                rank -> List.of("ip", "netns", "exec", namespaces.get(rank)), workerMemoryMb);
    }

    /** Bytes the bridge received from rank {@code rank}'s namespace so far: what crossed its veth. */
    long bytesFrom(int rank) throws IOException {
        String veth = "tv" + bridge.substring(2) + "-" + rank;
        return Long.parseLong(Files.readString(Path.of("/sys/class/net", veth, "statistics", "rx_bytes")).trim());
    }

    /**
     * The sockets listening or bound in rank {@code rank}'s namespace, as {@code ss -Htuln} lists them, one line
     * each with single spaces and a trailing one: "tcp LISTEN 0 100 198.18.7.2:5701 0.0.0.0:* ".
     */
    List<String> socketsOf(int rank) {
        Result r = run(List.of("ip", "netns", "exec", namespaces.get(rank), "ss", "-Htuln"));
        if (r.code != 0) {
            throw new AssertionError("ss in " + namespaces.get(rank) + " failed: " + r.output);
        }
        return r.output.lines().map(line -> line.strip().replaceAll("\\s+", " ") + " ").toList();
    }

    @Override
    public void close() {
        removeAll();
        try {
            Runtime.getRuntime().removeShutdownHook(cleanup);
        } catch (IllegalStateException shuttingDown) {
            // the hook is running
        }
    }

    private synchronized void removeAll() {
        for (String ns : namespaces) {
            run(List.of("ip", "netns", "del", ns)); // takes its end of the veth, and so the pair, with it
        }
        namespaces.clear();
        run(List.of("ip", "link", "del", bridge));
    }

    /** A /24 of 198.18.0.0/15 that no interface of this namespace uses (other test JVMs may run beside this one). */
    private static String freeSubnet() {
        String used = run(List.of("ip", "-o", "-4", "addr", "show")).output;
        int start = (int) (ProcessHandle.current().pid() * 7 + COUNTER.get()) & 511;
        for (int i = 0; i < 512; i++) {
            int k = (start + i) & 511;
            String subnet = "198." + (18 + k / 256) + "." + (k % 256);
            if (!used.contains(" " + subnet + ".")) {
                return subnet;
            }
        }
        throw new AssertionError("every /24 of 198.18.0.0/15 is in use");
    }

    /** Removes namespaces and links of test JVMs that were killed before they could. */
    private static void sweepLeftovers() {
        List<String> names = new ArrayList<>(run(List.of("ip", "netns", "list")).output.lines()
                .map(l -> l.split(" ")[0]).toList());
        run(List.of("ip", "-o", "link", "show")).output.lines()
                .map(l -> l.replaceFirst("^\\d+: ([^:@]+).*", "$1")).forEach(names::add);
        for (String name : names) {
            Matcher m = OURS.matcher(name);
            if (m.matches() && ProcessHandle.of(Long.parseLong(m.group(1) != null ? m.group(1) : m.group(2), 36))
                    .filter(ProcessHandle::isAlive).isEmpty()) {
                run(name.startsWith("tessera-test-") ? List.of("ip", "netns", "del", name)
                        : List.of("ip", "link", "del", name));
            }
        }
    }

    private void ip(String... args) {
        List<String> command = new ArrayList<>(List.of("ip"));
        command.addAll(List.of(args));
        Result r = run(command);
        if (r.code != 0) {
            throw new AssertionError(String.join(" ", command) + ": " + r.output.strip());
        }
    }

    private record Result(int code, String output) {
    }

    private static Result run(List<String> command) {
        Path output = null;
        try {
            output = Files.createTempFile("tessera-test-hosts-", ".out");
            Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(output.toFile()).start();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return new Result(-1, String.join(" ", command) + " did not finish within 30 s");
            }
            return new Result(p.exitValue(), Files.readString(output));
        } catch (IOException e) {
            return new Result(-1, e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(-1, "interrupted");
        } finally {
            if (output != null) {
                output.toFile().delete();
            }
        }
    }
}
