package dev.tessera.comm;

import io.aeron.driver.MediaDriver;
import io.aeron.driver.ThreadingMode;
import org.agrona.concurrent.BackoffIdleStrategy;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * An embedded Aeron media driver for one job: one per host (shared by that host's workers, who then talk over
 * IPC) or one per process. Its directory lives under {@code /dev/shm} as {@code tessera-<job>-<tag>} and holds
 * an owner file with the pid of the process that runs the driver; a directory whose owner is dead is what a
 * crashed run left behind and is deleted. The directory is removed on {@link #close()} and by a shutdown hook.
 *
 * <p>SHARED threading: on a 2-core machine one driver thread for conductor, sender and receiver beats three
 * (IPC 6.3 vs 4.2 GB/s, STACK.md).
 */
public final class MediaDriverHost implements AutoCloseable {

    static final String PREFIX = "tessera-";

    private final MediaDriver driver;
    private final Path dir;
    private final Thread shutdownHook;
    private volatile boolean closed;

    private MediaDriverHost(MediaDriver driver, Path dir) {
        this.driver = driver;
        this.dir = dir;
        this.shutdownHook = new Thread(() -> deleteRecursively(dir), "tessera-driver-dir-cleanup");
        Runtime.getRuntime().addShutdownHook(shutdownHook);
    }

    /** {@code /dev/shm/tessera-<jobId>-<tag>} (or under java.io.tmpdir where /dev/shm is missing). */
    public static String directoryFor(String jobId, String tag) {
        File shm = new File("/dev/shm");
        String base = shm.isDirectory() ? shm.getPath() : System.getProperty("java.io.tmpdir");
        return base + File.separator + PREFIX + jobId + "-" + tag;
    }

    /**
     * Starts a driver in {@code aeronDir}. A directory left by a dead owner is cleaned first; one whose owner
     * still runs means the job is already running here, which is a user error.
     */
    public static MediaDriverHost launch(String aeronDir, int mtu, int termLength) {
        return launch(aeronDir, mtu, termLength, 4_000);
    }

    /**
     * As {@link #launch(String, int, int)}, dropping a client (and its publications) that has been silent for
     * {@code livenessMs}. A job that must be patient with starved processes passes its own silence limit here:
     * a client's keepalives stop while its JVM is starved just as its heartbeats do.
     */
    public static MediaDriverHost launch(String aeronDir, int mtu, int termLength, long livenessMs) {
        Path dir = Path.of(aeronDir);
        sweepStale(dir.getParent());
        Optional<ProcessOwner> owner = ProcessOwner.readFrom(dir);
        if (owner.isPresent() && !owner.get().isGone()) {
            throw new UserInputException("Aeron directory " + dir + " belongs to running process " + owner.get().pid()
                    + ": is this job already running on this host? Use another job id or stop that process");
        }
        deleteRecursively(dir);
        MediaDriver.Context ctx = new MediaDriver.Context()
                .aeronDirectoryName(aeronDir)
                .threadingMode(ThreadingMode.SHARED)
                // Bulk data between local ranks goes through symmetric memory and IPC logs, neither of which needs
                // the driver on the data path; an idle driver that parks up to 1 ms leaves the cores to training.
                .sharedIdleStrategy(new BackoffIdleStrategy(100, 10, TimeUnit.MICROSECONDS.toNanos(1),
                        TimeUnit.MILLISECONDS.toNanos(1)))
                .dirDeleteOnStart(true)
                .dirDeleteOnShutdown(true)
                .termBufferSparseFile(true)
                .ipcTermBufferLength(termLength)
                .publicationTermBufferLength(termLength)
                .ipcMtuLength(mtu)
                .mtuLength(mtu)
                // Large socket buffers and windows: the default 128 KiB window caps UDP at a fraction of a GB/s.
                .socketRcvbufLength(2 << 20)
                .socketSndbufLength(2 << 20)
                .initialWindowLength(2 << 20)
                // By default (4 s) a killed worker's publications and images go away within seconds, not Aeron's
                // 10 s, so peers blocked on it fail fast with its rank named.
                .clientLivenessTimeoutNs(TimeUnit.MILLISECONDS.toNanos(livenessMs))
                .imageLivenessTimeoutNs(TimeUnit.MILLISECONDS.toNanos(livenessMs))
                // A publication counts as connected while status messages from its subscriber arrive; Aeron's 5 s
                // default declared a starved peer behind a saturated 100 Mbit/s link gone ("no longer subscribes")
                // while it was alive. It gets the same patience as a silent client.
                .publicationConnectionTimeoutNs(TimeUnit.MILLISECONDS.toNanos(livenessMs))
                // Aeron requires the unblock timeout to exceed the client liveness timeout.
                .publicationUnblockTimeoutNs(TimeUnit.MILLISECONDS.toNanos(livenessMs) + TimeUnit.SECONDS.toNanos(11));
        MediaDriver driver = MediaDriver.launchEmbedded(ctx);
        try {
            ProcessOwner.writeTo(dir);
        } catch (IOException e) {
            driver.close();
            throw new UncheckedIOException("cannot write owner file in " + dir, e);
        }
        return new MediaDriverHost(driver, dir);
    }

    public String aeronDirectoryName() {
        return dir.toString();
    }

    /** Where {@link #directoryFor} puts driver directories: {@code /dev/shm}, or java.io.tmpdir without it. */
    public static Path baseDirectory() {
        return Path.of(directoryFor("x", "y")).getParent();
    }

    /**
     * Deletes every {@code tessera-*} directory in {@code base} whose owner process is gone (a crashed or killed
     * run; see {@link ProcessOwner}). The owner is the one in the owner file, else the driver named in Aeron's CnC
     * file; a directory with neither is left alone unless older than a minute: it may be starting.
     */
    public static int sweepStale(Path base) {
        if (base == null || !Files.isDirectory(base)) {
            return 0;
        }
        int removed = 0;
        try (Stream<Path> list = Files.list(base)) {
            for (Path candidate : (Iterable<Path>) list::iterator) {
                if (!candidate.getFileName().toString().startsWith(PREFIX) || !Files.isDirectory(candidate)) {
                    continue;
                }
                if (isStale(candidate)) {
                    deleteRecursively(candidate);
                    removed++;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + base, e);
        }
        return removed;
    }

    static boolean isStale(Path dir) {
        Optional<ProcessOwner> owner = ProcessOwner.readFrom(dir).or(() -> ProcessOwner.fromAeronCnc(dir));
        if (owner.isPresent()) {
            return owner.get().isGone();
        }
        try {
            return System.currentTimeMillis() - Files.getLastModifiedTime(dir).toMillis() > 60_000;
        } catch (IOException e) {
            return false;
        }
    }

    static void deleteRecursively(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException | UncheckedIOException e) {
            // Best effort: a concurrent delete by the driver itself is fine.
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        driver.close();
        deleteRecursively(dir);
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException shuttingDown) {
            // The hook is running or has run; nothing left to undo.
        }
    }
}
