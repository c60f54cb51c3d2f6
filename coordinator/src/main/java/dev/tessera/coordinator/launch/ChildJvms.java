package dev.tessera.coordinator.launch;

import dev.tessera.comm.HostCpus;
import dev.tessera.comm.ProcessOwner;
import dev.tessera.comm.ProcessState;
import dev.tessera.worker.io.AtomicFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Starts JVMs as child processes of this one, with this JVM's class path and module flags (the {@code --add-*}
 * options Aeron, Agrona and ND4J need), each with its output in a log file. {@link #close()} ends every process
 * it started, forcibly after a grace period, so a failed test or benchmark leaves nothing running. The mechanics
 * under {@link LocalLauncher} and {@code tessera bench comm}.
 */
public final class ChildJvms implements AutoCloseable {

    static final String LOG_DIR_PREFIX = "tessera-workers-";
    private static final String TASKSET = "/usr/bin/taskset";

    private final List<String> jvmArgs;
    private final Path logDir;
    private final List<Child> children = new ArrayList<>();

    /** A started JVM: its process and the file that collects its stdout and stderr. */
    public record Child(String name, Process process, Path log) {

        /** What the child printed so far, without the JVM's own notices ({@link JvmNoise}). */
        public String output() {
            try {
                if (!Files.exists(log)) {
                    return "";
                }
                StringBuilder out = new StringBuilder();
                for (String line : Files.readString(log).split("(?<=\n)")) {
                    if (!JvmNoise.isNoise(line)) {
                        out.append(line);
                    }
                }
                return out.toString();
            } catch (IOException e) {
                return "(cannot read " + log + ": " + e.getMessage() + ")";
            }
        }

        /** Waits for the exit; -1 if it is still running after {@code timeoutMs}. */
        public int waitFor(long timeoutMs) {
            try {
                return process.waitFor(timeoutMs, TimeUnit.MILLISECONDS) ? process.exitValue() : -1;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return -1;
            }
        }
    }

    /**
     * {@code extraJvmArgs} come after the inherited flags (e.g. {@code -Xmx512m}). The children's log folder,
     * {@code tessera-workers-*} in java.io.tmpdir, records this process as its owner; folders whose owner is gone
     * (a parent killed before {@link #close()}) are removed first.
     */
    public ChildJvms(List<String> extraJvmArgs) {
        List<String> args = new ArrayList<>(inheritedJvmFlags());
        args.addAll(extraJvmArgs);
        this.jvmArgs = List.copyOf(args);
        Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
        sweepStale(tmp);
        try {
            this.logDir = Files.createTempDirectory(tmp, LOG_DIR_PREFIX);
            ProcessOwner.writeTo(logDir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a log directory for child JVMs in " + tmp, e);
        }
    }

    /**
     * Deletes the {@code tessera-workers-*} folders in {@code base} whose owner is gone ({@link ProcessOwner});
     * those without an owner file (made by an older Tessera) are left alone, as nothing says whose they are.
     * Returns how many were deleted.
     */
    public static int sweepStale(Path base) {
        int removed = 0;
        try (Stream<Path> list = Files.list(base)) {
            for (Path dir : (Iterable<Path>) list::iterator) {
                if (dir.getFileName().toString().startsWith(LOG_DIR_PREFIX) && Files.isDirectory(dir)
                        && ProcessOwner.readFrom(dir).map(ProcessOwner::isGone).orElse(false)) {
                    deleteQuietly(dir);
                    removed++;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + base, e);
        }
        return removed;
    }

    /** The {@code --add-*} and {@code --enable-native-access} module flags and {@code -D} properties this JVM was started with. */
    public static List<String> inheritedJvmFlags() {
        List<String> in = ManagementFactory.getRuntimeMXBean().getInputArguments();
        List<String> out = new ArrayList<>();
        for (int i = 0; i < in.size(); i++) {
            String a = in.get(i);
            if (a.startsWith("--add-") || a.startsWith("--enable-preview") || a.startsWith("--enable-native-access")) {
                out.add(a);
                if (!a.contains("=") && !a.equals("--enable-preview") && i + 1 < in.size()) {
                    out.add(in.get(++i));
                }
            } else if (a.startsWith("-Dorg.bytedeco") || a.startsWith("-Djava.awt.headless")) {
                out.add(a);
            }
        }
        return out;
    }

    public synchronized Child start(String name, String mainClass, List<String> args, Map<String, String> env) {
        return start(name, List.of(), mainClass, args, env);
    }

    /**
     * Starts {@code mainClass} under {@code prefix}: commands that exec the JVM in a changed context, such as
     * {@link #pinnedTo} or {@code ip netns exec <namespace>}. Each must exec rather than fork, so that the process
     * this returns is the JVM itself (its pid, its state, its exit code).
     */
    public synchronized Child start(String name, List<String> prefix, String mainClass, List<String> args,
                                    Map<String, String> env) {
        List<String> command = new ArrayList<>(prefix);
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(jvmArgs);
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(mainClass);
        command.addAll(args);
        Path log = logDir.resolve(name + ".log");
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(log.toFile());
        pb.environment().putAll(env);
        try {
            Child c = new Child(name, pb.start(), log);
            children.add(c);
            return c;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + name + ": " + command.get(0), e);
        }
    }

    /**
     * The prefix that binds a child to the CPUs {@code cpus} (a {@code taskset} list such as {@code "0"} or
     * {@code "2-3"}); none when {@code cpus} is null. Bound ranks stay on their own cores: the scheduler otherwise
     * now and then stacks two spinning ranks on one core, which halves a collective's bandwidth for the whole run.
     */
    public static List<String> pinnedTo(String cpus) {
        return cpus == null ? List.of() : List.of(TASKSET, "-c", cpus);
    }

    /**
     * The CPUs for child {@code index} of {@code count} on this host, like MPI's {@code --bind-to core}: an
     * equal share of the CPUs this process may use, or one CPU round-robin when there are more children than
     * CPUs; null (no binding) where {@code taskset} or the CPU list is not available.
     */
    public static String cpusFor(int index, int count) {
        List<Integer> allowed = HostCpus.allowed();
        if (allowed.isEmpty() || !Files.isExecutable(Path.of(TASKSET))) {
            return null;
        }
        return share(allowed, index, count);
    }

    /** Child {@code index}'s share of {@code allowed}, as a {@code taskset} list. */
    static String share(List<Integer> allowed, int index, int count) {
        int n = allowed.size();
        if (count >= n) {
            return Integer.toString(allowed.get(index % n));
        }
        StringBuilder list = new StringBuilder();
        for (int i = index * n / count; i < (index + 1) * n / count; i++) {
            list.append(list.length() == 0 ? "" : ",").append(allowed.get(i));
        }
        return list.toString();
    }

    public synchronized List<Child> children() {
        return List.copyOf(children);
    }

    /** Whether any process this started is still alive. */
    public synchronized boolean anyAlive() {
        return children.stream().anyMatch(c -> c.process().isAlive());
    }

    @Override
    public synchronized void close() {
        for (Child c : children) {
            c.process().descendants().forEach(ProcessHandle::destroy);
            if (ProcessState.isStopped(c.process().pid())) { // a stopped process acts on SIGTERM only once resumed
                c.process().destroyForcibly();
            } else {
                c.process().destroy();
            }
        }
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        for (Child c : children) {
            try {
                long left = until - System.nanoTime();
                if (left <= 0 || !c.process().waitFor(left, TimeUnit.NANOSECONDS)) {
                    c.process().descendants().forEach(ProcessHandle::destroyForcibly);
                    c.process().destroyForcibly().waitFor(5, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                c.process().destroyForcibly();
            }
        }
        deleteQuietly(logDir);
    }

    /** Best effort: another job sweeping the same folder at the same moment is fine. */
    private static void deleteQuietly(Path dir) {
        try {
            AtomicFiles.deleteRecursively(dir);
        } catch (UncheckedIOException raced) {
            // what is left is swept once its owner is gone
        }
    }
}
