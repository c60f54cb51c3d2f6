package dev.tessera.worker.checkpoint;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * SHA-256 of checkpoint files on background threads. A file's hash starts as soon as its bytes are written, while
 * its fsync and the next files' writes go on, so the manifest's hashing overlaps the disk's work instead of
 * following it (a second pass over the files cost about as long as writing them). Files another process wrote, and
 * files being verified, are hashed in parallel, one per core.
 */
final class FileDigests {

    private static final AtomicInteger THREADS = new AtomicInteger();
    private static final ExecutorService POOL = Executors.newFixedThreadPool(
            Math.max(1, Runtime.getRuntime().availableProcessors()), r -> {
                Thread t = new Thread(r, "tessera-checkpoint-hash-" + THREADS.incrementAndGet());
                t.setDaemon(true);
                return t;
            });
    private static final Map<Path, Future<String>> STARTED = new ConcurrentHashMap<>();

    private FileDigests() {
    }

    /** Starts hashing {@code file}, whose bytes are all written (its fsync may still be running). */
    static void start(Path file) {
        Path key = file.toAbsolutePath();
        STARTED.put(key, hash(key));
    }

    /** The hash {@link #start} began for {@code file}, or a new one: {@link #get} waits for it. */
    static Future<String> of(Path file) {
        Path key = file.toAbsolutePath();
        Future<String> started = STARTED.remove(key);
        return started != null ? started : hash(key);
    }

    /** Drops the hashes started for files under {@code dir} (a staging folder that was aborted). */
    static void forget(Path dir) {
        Path key = dir.toAbsolutePath();
        STARTED.keySet().removeIf(p -> p.startsWith(key));
    }

    static String get(Future<String> digest) throws IOException {
        try {
            return digest.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while hashing a checkpoint file", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof UncheckedIOException u) {
                throw u.getCause();
            }
            throw new IOException("cannot hash a checkpoint file: " + e.getCause(), e.getCause());
        }
    }

    private static Future<String> hash(Path file) {
        return POOL.submit(() -> {
            try {
                return Manifest.sha256(file);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }
}
