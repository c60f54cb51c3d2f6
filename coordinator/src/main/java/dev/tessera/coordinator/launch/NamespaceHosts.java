package dev.tessera.coordinator.launch;

import dev.tessera.comm.DriverMode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;


/**
 * Worker "hosts" on this machine: one network namespace per worker, each with a veth whose other end is on a
 * bridge in this process's namespace, addresses from the benchmarking range 198.18.0.0/15 (STACK.md). The
 * coordinator binds the bridge's address and each worker its namespace's, so Hazelcast and Aeron UDP really cross
 * interfaces and no worker can reach another over loopback. With a rate, each worker's link is limited to it in both
 * directions ({@code tc tbf} on both ends of its veth): a slow link between hosts, for the tests and benchmarks of
 * what pays off there (gradient compression). Names carry this JVM's pid: {@link #create} first removes what a
 * killed JVM left, and {@link #close()} (also a shutdown hook) removes this one's.
 */
public final class NamespaceHosts implements AutoCloseable {

    private static final AtomicInteger COUNTER = new AtomicInteger();
    private static final String PID = Long.toString(ProcessHandle.current().pid(), 36);
    /** Our names: namespaces tessera-host-PID-N-rR, bridges tbPID-N, veths tvPID-N-R (links: at most 15 chars). */
    private static final Pattern OURS =
            Pattern.compile("^(?:tessera-host-([0-9a-z]{1,6})-\\d+-r\\d+|t[bv]([0-9a-z]{1,6})-\\d+(?:-\\d+)?)$");

    private final String bridge;
    private final List<String> namespaces = new ArrayList<>();
    private final String subnet;
    private final Thread cleanup = new Thread(this::removeAll, "tessera-hosts-cleanup");

    private NamespaceHosts(String bridge, String subnet) {
        this.bridge = bridge;
        this.subnet = subnet;
    }

    /**
     * Why namespaces cannot be made here (not root, no {@code ip}), or empty where they can; a test skips, saying
     * so, where they cannot.
     */
    public static Optional<String> unavailableReason() {
        if (run(List.of("ip", "-V")).code != 0) {
            return Optional.of("no `ip` command (iproute2) on this machine");
        }
        String uid = run(List.of("id", "-u")).output.strip();
        if (!uid.equals("0")) {
            return Optional.of("network namespaces need root; this process runs as uid " + uid);
        }
        if (run(List.of("tc", "-V")).code != 0) {
            return Optional.of("no `tc` command (iproute2) on this machine");
        }
        return Optional.empty();
    }

    /**
     * {@code workers} namespaces on one bridge, each worker's link limited to {@code rate} ({@code tc} units such as
     * "100mbit" or "1gbit"; null: unlimited). Fails with {@link IllegalStateException}, naming the command and
     * what it said, where the kernel refuses; whatever was made by then is removed.
     */
    public static NamespaceHosts create(int workers, String rate) {
        unavailableReason().ifPresent(why -> {
            throw new IllegalStateException("cannot make network namespaces: " + why);
        });
        sweepLeftovers();
        int n = COUNTER.incrementAndGet();
        NamespaceHosts hosts = new NamespaceHosts("tb" + PID + "-" + n, freeSubnet());
        Runtime.getRuntime().addShutdownHook(hosts.cleanup);
        try {
            hosts.ip("link", "add", hosts.bridge, "type", "bridge");
            hosts.ip("addr", "add", hosts.coordinatorAddress() + "/24", "dev", hosts.bridge);
            hosts.ip("link", "set", hosts.bridge, "up");
            for (int r = 0; r < workers; r++) {
                String ns = "tessera-host-" + PID + "-" + n + "-r" + r;
                String veth = "tv" + PID + "-" + n + "-" + r;
                hosts.ip("netns", "add", ns);
                hosts.namespaces.add(ns);
                hosts.ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns);
                hosts.ip("link", "set", veth, "master", hosts.bridge);
                hosts.ip("link", "set", veth, "up");
                hosts.ip("-n", ns, "addr", "add", hosts.workerAddress(r) + "/24", "dev", "eth0");
                hosts.ip("-n", ns, "link", "set", "eth0", "up");
                hosts.ip("-n", ns, "link", "set", "lo", "up");
                if (rate != null) {
                    hosts.limit(List.of(), veth, rate);                         // towards the worker
                    hosts.limit(List.of("ip", "netns", "exec", ns), "eth0", rate); // from it
                }
            }
        } catch (RuntimeException e) {
            hosts.close();
            throw e;
        }
        return hosts;
    }

    /**
     * A token bucket of {@code rate} on {@code device}'s egress. The bucket holds 10 ms of the rate (at least 64 KB),
     * so a burst of Aeron's 64 KB datagrams passes at the rate instead of being cut to the kernel's timer tick. The
     * queue behind it holds 1 s of the rate (12.5 MB at 100 Mbit/s): Aeron's UDP has no congestion control and sends a
     * whole receiver window (2 MiB a publication) at once, and each 64 KB datagram crosses the 1500-byte veth as ~45
     * fragments, so a queue shallower than the windows in flight drops part of every one. With 50 ms a 100 Mbit/s
     * job stalled outright (no step in 300 s); with 1 s it runs at the link's rate.
     */
    private void limit(List<String> prefix, String device, String rate) {
        List<String> command = new ArrayList<>(prefix);
        command.addAll(List.of("tc", "qdisc", "add", "dev", device, "root", "tbf", "rate", rate, "burst",
                Math.max(64 * 1024, bitsPerSecond(rate) / 8 / 100) + "b", "latency", "1s"));
        Result r = run(command);
        if (r.code != 0) {
            throw new IllegalStateException(String.join(" ", command) + ": " + r.output.strip());
        }
    }

    /** {@code tc}'s rate units: bit, kbit, mbit, gbit (decimal). */
    static long bitsPerSecond(String rate) {
        Matcher m = Pattern.compile("(\\d+)(bit|kbit|mbit|gbit)").matcher(rate.toLowerCase(Locale.ROOT));
        if (!m.matches()) {
            throw new IllegalArgumentException("rate '" + rate + "': expected a number and bit, kbit, mbit or gbit,"
                    + " as 100mbit");
        }
        long scale = switch (m.group(2)) {
            case "kbit" -> 1_000L;
            case "mbit" -> 1_000_000L;
            case "gbit" -> 1_000_000_000L;
            default -> 1L;
        };
        return Long.parseLong(m.group(1)) * scale;
    }

    /** The bridge's address, in this process's namespace: where the coordinator binds. */
    public String coordinatorAddress() {
        return subnet + ".1";
    }

    public String workerAddress(int rank) {
        return subnet + "." + (rank + 2);
    }

    public String namespace(int rank) {
        return namespaces.get(rank);
    }

    /** Worker JVMs exec'd under {@code ip netns exec}, each a host of its own with a media driver of its own. */
    public LocalLauncher launcher(int workerMemoryMb) {
        String here = "coordinator-" + PID;
        List<Placement> workers = new ArrayList<>();
        for (int r = 0; r < namespaces.size(); r++) {
            workers.add(new Placement(namespaces.get(r), workerAddress(r), DriverMode.PER_PROCESS));
        }
        return new LocalLauncher(new Placement(here, coordinatorAddress(), DriverMode.SHARED_PER_HOST), workers,
                rank -> List.of("ip", "netns", "exec", namespaces.get(rank)), workerMemoryMb);
    }

    /** Bytes the bridge received from rank {@code rank}'s namespace so far: what crossed its veth. */
    public long bytesFrom(int rank) throws IOException {
        String veth = "tv" + bridge.substring(2) + "-" + rank;
        return Long.parseLong(Files.readString(Path.of("/sys/class/net", veth, "statistics", "rx_bytes")).trim());
    }

    /**
     * The sockets listening or bound in rank {@code rank}'s namespace, as {@code ss -Htuln} lists them, one line
     * each with single spaces and a trailing one: "tcp LISTEN 0 100 198.18.7.2:5701 0.0.0.0:* ".
     */
    public List<String> socketsOf(int rank) {
        Result r = run(List.of("ip", "netns", "exec", namespaces.get(rank), "ss", "-Htuln"));
        if (r.code != 0) {
            throw new IllegalStateException("ss in " + namespaces.get(rank) + " failed: " + r.output);
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
        throw new IllegalStateException("every /24 of 198.18.0.0/15 is in use");
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
                run(name.startsWith("tessera-host-") ? List.of("ip", "netns", "del", name)
                        : List.of("ip", "link", "del", name));
            }
        }
    }

    private void ip(String... args) {
        List<String> command = new ArrayList<>(List.of("ip"));
        command.addAll(List.of(args));
        Result r = run(command);
        if (r.code != 0) {
            throw new IllegalStateException(String.join(" ", command) + ": " + r.output.strip());
        }
    }

    private record Result(int code, String output) {
    }

    private static Result run(List<String> command) {
        Path output = null;
        try {
            output = Files.createTempFile("tessera-hosts-", ".out");
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
