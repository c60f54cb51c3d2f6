package dev.tessera.coordinator.launch;

import dev.tessera.comm.ChildJvm;
import dev.tessera.comm.HostCpus;
import dev.tessera.comm.ProcessOwner;
import dev.tessera.comm.ProcessState;
import dev.tessera.worker.io.AtomicFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Starts JVMs as child processes of this one ({@link ChildJvm}: this JVM's class path and module flags), each with
 * its output in a log file of one folder per set. {@link #close()} ends every process
 * it started, forcibly after a grace period, so a failed test or benchmark leaves nothing running. The mechanics
 * under {@link LocalLauncher} and {@code tessera bench comm}.
 */
public final class ChildJvms implements AutoCloseable {

    static final String LOG_DIR_PREFIX = "tessera-workers-";
    private static final String TASKSET = "/usr/bin/taskset";

    private final List<String> jvmArgs;
    private final Path logDir;
    private final List<ChildJvm> children = new ArrayList<>();

    /**
     * {@code extraJvmArgs} come after the inherited flags (e.g. {@code -Xmx512m}). The children's log folder,
     * {@code tessera-workers-*} in java.io.tmpdir, records this process as its owner; folders whose owner is gone
     * (a parent killed before {@link #close()}) are removed first.
     */
    public ChildJvms(List<String> extraJvmArgs) {
        this.jvmArgs = List.copyOf(extraJvmArgs);
        this.logDir = ownedLogDirectory();
    }

    /**
     * A new {@code tessera-workers-*} folder in java.io.tmpdir that records this process as its owner, after
     * removing those whose owner is gone: for child logs that must not outlive a killed parent for long.
     */
    public static Path ownedLogDirectory() {
        Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
        sweepStale(tmp);
        try {
            Path dir = Files.createTempDirectory(tmp, LOG_DIR_PREFIX);
            ProcessOwner.writeTo(dir);
            return dir;
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

    public synchronized ChildJvm start(String name, String mainClass, List<String> args, Map<String, String> env) {
        return start(name, List.of(), mainClass, args, env);
    }

    /** Starts {@code mainClass} under {@code prefix} ({@link ChildJvm#start}), its log in this set's folder. */
    public synchronized ChildJvm start(String name, List<String> prefix, String mainClass, List<String> args,
                                       Map<String, String> env) {
        ChildJvm c = ChildJvm.start(name, prefix, jvmArgs, mainClass, args, env, logDir.resolve(name + ".log"));
        children.add(c);
        return c;
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

    public synchronized List<ChildJvm> children() {
        return List.copyOf(children);
    }

    /** Whether any process this started is still alive. */
    public synchronized boolean anyAlive() {
        return children.stream().anyMatch(c -> c.process().isAlive());
    }

    @Override
    public synchronized void close() {
        for (ChildJvm c : children) {
            c.process().descendants().forEach(ProcessHandle::destroy);
            if (ProcessState.isStopped(c.process().pid())) { // a stopped process acts on SIGTERM only once resumed
                c.process().destroyForcibly();
            } else {
                c.process().destroy();
            }
        }
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        for (ChildJvm c : children) {
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
