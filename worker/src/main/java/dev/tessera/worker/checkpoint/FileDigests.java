package dev.tessera.worker.checkpoint;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * SHA-256 of checkpoint files on background threads. A file this process writes is hashed from the memory it is
 * written from, on another core while the write goes on, so the manifest costs neither a second pass over the
 * disk nor time after the write (reading the files back cost about as long as writing them, and more when the
 * page cache could not hold them). Files another process wrote, and files being verified, are read and hashed in
 * parallel, one per core.
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

    /**
     * Starts hashing {@code contents}, the bytes {@code file} is being written from, in order: views of
     * {@code owner}'s memory, which the hash keeps reachable (and which must not change) until {@link #of} has it.
     */
    static void start(Path file, List<ByteBuffer> contents, Object owner) {
        STARTED.put(file.toAbsolutePath(), POOL.submit(() -> {
            MessageDigest md = Manifest.newSha256();
            contents.forEach(md::update);
            Reference.reachabilityFence(owner);
            return HexFormat.of().formatHex(md.digest());
        }));
    }

    /** The hash {@link #start} began for {@code file}, or a new one of the file: {@link #get} waits for it. */
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
