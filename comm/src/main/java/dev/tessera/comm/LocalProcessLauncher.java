package dev.tessera.comm;

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
 * Starts worker JVMs on this host with this JVM's class path and module flags (the {@code --add-*} options
 * Aeron, Agrona and ND4J need), each with its output in a log file. {@link #close()} ends every process it
 * started, forcibly after a grace period, so a failed test or benchmark leaves nothing running.
 */
public final class LocalProcessLauncher implements AutoCloseable {

    static final String LOG_DIR_PREFIX = "tessera-workers-";

    private final List<String> jvmArgs;
    private final Path logDir;
    private final List<Worker> workers = new ArrayList<>();

    /** A started worker: its process and the file that collects its stdout and stderr. */
    public record Worker(String name, Process process, Path log) {

        /** What the worker printed so far, without the JVM's own notices ({@link JvmNoise}). */
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
     * {@code extraJvmArgs} come after the inherited flags (e.g. {@code -Xmx512m}). The workers' log folder,
     * {@code tessera-workers-*} in java.io.tmpdir, records this process as its owner; folders whose owner is gone
     * (a launcher killed before {@link #close()}) are removed first.
     */
    public LocalProcessLauncher(List<String> extraJvmArgs) {
        List<String> args = new ArrayList<>(inheritedJvmFlags());
        args.addAll(extraJvmArgs);
        this.jvmArgs = List.copyOf(args);
        Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
        sweepStale(tmp);
        try {
            this.logDir = Files.createTempDirectory(tmp, LOG_DIR_PREFIX);
            ProcessOwner.writeTo(logDir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a log directory for workers in " + tmp, e);
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
                    MediaDriverHost.deleteRecursively(dir);
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

    public synchronized Worker start(String name, String mainClass, List<String> args, Map<String, String> env) {
        return start(name, mainClass, args, env, null);
    }

    /**
     * Starts a worker bound to the CPUs {@code cpus} (a {@code taskset} list such as {@code "0"} or {@code "2-3"}),
     * or unbound when it is null. Bound ranks stay on their own cores: the scheduler otherwise now and then
     * stacks two spinning ranks on one core, which halves a collective's bandwidth for the whole run.
     */
    public synchronized Worker start(String name, String mainClass, List<String> args, Map<String, String> env,
                                     String cpus) {
        List<String> command = new ArrayList<>();
        if (cpus != null) {
            command.addAll(List.of(TASKSET, "-c", cpus));
        }
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
            Worker w = new Worker(name, pb.start(), log);
            workers.add(w);
            return w;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start worker " + name + ": " + command.get(0), e);
        }
    }

    private static final String TASKSET = "/usr/bin/taskset";

    /**
     * The CPUs for worker {@code index} of {@code count} on this host, like MPI's {@code --bind-to core}: an
     * equal share of the CPUs this process may use, or one CPU round-robin when there are more workers than
     * CPUs; null (no binding) where {@code taskset} or the CPU list is not available.
     */
    public static String cpusFor(int index, int count) {
        List<Integer> allowed = HostCpus.allowed();
        if (allowed.isEmpty() || !Files.isExecutable(Path.of(TASKSET))) {
            return null;
        }
        return share(allowed, index, count);
    }

    /** Worker {@code index}'s share of {@code allowed}, as a {@code taskset} list. */
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

    public synchronized List<Worker> workers() {
        return List.copyOf(workers);
    }

    /** Whether any process this launcher started is still alive. */
    public synchronized boolean anyAlive() {
        return workers.stream().anyMatch(w -> w.process().isAlive());
    }

    @Override
    public synchronized void close() {
        for (Worker w : workers) {
            w.process().descendants().forEach(ProcessHandle::destroy);
            if (ProcessState.isStopped(w.process().pid())) { // a stopped process acts on SIGTERM only once resumed
                w.process().destroyForcibly();
            } else {
                w.process().destroy();
            }
        }
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        for (Worker w : workers) {
            try {
                long left = until - System.nanoTime();
                if (left <= 0 || !w.process().waitFor(left, TimeUnit.NANOSECONDS)) {
                    w.process().descendants().forEach(ProcessHandle::destroyForcibly);
                    w.process().destroyForcibly().waitFor(5, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                w.process().destroyForcibly();
            }
        }
        MediaDriverHost.deleteRecursively(logDir);
    }
}
