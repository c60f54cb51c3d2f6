package dev.tessera.worker.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.stream.Stream;

/**
 * Crash-safe file writes: a reader sees either the old content or the complete new content, never a
 * torn file, even across power loss. The recipe is write a temporary sibling, fsync it, rename it over
 * the target, fsync the parent directory (which makes the rename itself durable).
 */
public final class AtomicFiles {

    private static final SecureRandom RANDOM = new SecureRandom();

    private AtomicFiles() {
    }

    /** Atomically replaces {@code target} with {@code content} encoded as UTF-8. */
    public static void writeString(Path target, String content) {
        writeBytes(target, content.getBytes(StandardCharsets.UTF_8));
    }

    /** Atomically replaces {@code target} with {@code content}; creates missing parent folders. */
    public static void writeBytes(Path target, byte[] content) {
        Path parent = target.toAbsolutePath().getParent();
        Path tmp = parent.resolve("." + target.getFileName() + ".tmp-" + randomSuffix());
        try {
            Files.createDirectories(parent);
            writeSynced(tmp, content);
            moveAtomically(tmp, target);
        } catch (IOException e) {
            deleteQuietly(tmp);
            throw new UncheckedIOException("cannot write " + target, e);
        } catch (RuntimeException e) {
            deleteQuietly(tmp);
            throw e;
        }
    }

    /** Writes a new file (it must not exist) and fsyncs it before returning. */
    public static void writeSynced(Path file, byte[] content) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer buf = ByteBuffer.wrap(content);
            while (buf.hasRemaining()) {
                ch.write(buf);
            }
            ch.force(true);
        }
    }

    /**
     * Renames {@code source} to {@code target} atomically (replacing a file target) and makes the rename
     * durable by fsyncing the target's parent directory. Fails rather than falling back to a copy when the
     * file system cannot rename atomically.
     */
    public static void moveAtomically(Path source, Path target) throws IOException {
        try {
            Files.move(source, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            throw new IOException("cannot rename " + source + " to " + target
                    + " atomically (different file systems?)", e);
        }
        fsyncDirectory(target.toAbsolutePath().getParent());
    }

    /** Flushes a file's content and metadata to stable storage. */
    public static void fsyncFile(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ch.force(true);
        }
    }

    /**
     * Flushes a directory's entries (new names, renames). POSIX allows it through a read-only handle;
     * Windows cannot open directories this way and makes renames durable itself, so that failure is ignored.
     */
    public static void fsyncDirectory(Path dir) throws IOException {
        FileChannel ch;
        try {
            ch = FileChannel.open(dir, StandardOpenOption.READ);
        } catch (IOException e) {
            if (isWindows()) {
                return;
            }
            throw e;
        }
        try (ch) {
            ch.force(true);
        } catch (IOException e) {
            if (!isWindows()) {
                throw e;
            }
        }
    }

    /** 64 random bits in hex: unique enough for temporary names that concurrent writers must not share. */
    public static String randomSuffix() {
        byte[] b = new byte[8];
        RANDOM.nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // Best effort: a leftover temporary file is named so that readers ignore it.
        }
    }

    private static boolean isWindows() {
        return System.getProperty("os.name", "").toLowerCase().startsWith("windows");
    }

    /** Deletes {@code dir} and everything below it; a missing {@code dir} is fine. */
    public static void deleteRecursively(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + dir, e);
        }
    }
}
