package dev.tessera.worker.checkpoint;

import com.sun.nio.file.ExtendedOpenOption;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.io.UncheckedIOException;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import org.agrona.BufferUtil;

/**
 * Whole checkpoint files written and read at disk speed: {@code O_DIRECT} through aligned staging chunks, with the
 * next chunk's I/O on another thread while this one is filled or consumed.
 *
 * <p>Why not the page cache: next to a model that fills most of memory, every dirty page of a buffered write made
 * the kernel reclaim cache first, and a 1 B-parameter checkpoint (11 GB) went to disk at a fifth of the speed
 * {@code dd} reaches on a quiet machine; {@code dd} itself slowed the same way while another process held that
 * memory, and not at all with {@code oflag=direct}. Where the file system refuses {@code O_DIRECT} (tmpfs), the same
 * chunks go through the page cache.
 */
final class DirectFile {

    /** Bytes per I/O: as fast as 64 MiB for {@code dd} here, and four in flight cost only 32 MiB. */
    static final int CHUNK = 8 << 20;

    /** Buffer address, file offset and length alignment: a multiple of every block size {@code O_DIRECT} may ask. */
    private static final int ALIGNMENT = 64 << 10;

    /** Chunks per file: one being filled or consumed while the others are in the kernel. */
    private static final int IN_FLIGHT = 4;

    private static final long POLL_MILLIS = 100;

    /** The longest one chunk's I/O may take before the file is given up as hung (a dead network mount). */
    private static final long IO_DEADLINE_SECONDS = 600;

    private static final AtomicInteger THREADS = new AtomicInteger();
    private static final ExecutorService IO = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "tessera-checkpoint-io-" + THREADS.incrementAndGet());
        t.setDaemon(true);
        return t;
    });

    /** What {@link #read} hands over: the bytes at {@code fileOffset}, valid only during the call. */
    @FunctionalInterface
    interface ChunkConsumer {
        void accept(long fileOffset, ByteBuffer chunk) throws IOException;
    }

    private DirectFile() {
    }

    /**
     * Writes {@code parts} in order as the whole of {@code file} (created or truncated), fsyncs it and returns its
     * size. The parts are only read, so they may be views of live memory.
     */
    static long write(Path file, Iterable<ByteBuffer> parts) throws IOException {
        try (FileChannel channel = open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            Chunks chunks = new Chunks();
            try {
                ByteBuffer staging = chunks.free(file);
                long position = 0;
                for (ByteBuffer part : parts) {
                    ByteBuffer src = part.duplicate();
                    while (src.hasRemaining()) {
                        int n = Math.min(staging.remaining(), src.remaining());
                        staging.put(staging.position(), src, src.position(), n);
                        staging.position(staging.position() + n);
                        src.position(src.position() + n);
                        if (!staging.hasRemaining()) {
                            chunks.write(channel, staging.flip(), position);
                            position += CHUNK;
                            staging = chunks.free(file);
                        }
                    }
                }
                long size = position + staging.position();
                if (staging.position() > 0) {
                    // O_DIRECT writes whole aligned blocks: pad the tail with zeros, then cut the file to its size.
                    int padded = alignUp(staging.position());
                    while (staging.position() < padded) {
                        staging.put((byte) 0);
                    }
                    chunks.write(channel, staging.flip(), position);
                } else {
                    chunks.recycle(staging);
                }
                chunks.awaitAll(file);
                channel.truncate(size);
                channel.force(true);
                return size;
            } finally {
                chunks.close();
            }
        }
    }

    /** Reads all of {@code file} front to back, handing each chunk to {@code consumer} in file order. */
    static void read(Path file, ChunkConsumer consumer) throws IOException {
        try (FileChannel channel = open(file, StandardOpenOption.READ)) {
            long size = channel.size();
            Chunks chunks = new Chunks();
            BlockingQueue<ByteBuffer> filled = new ArrayBlockingQueue<>(IN_FLIGHT);
            // Never cancelled (an interrupt would close the channel under it): told to stop, and waited for.
            CompletableFuture<Void> reader = CompletableFuture.runAsync(() -> readAhead(channel, size, file, chunks, filled), IO);
            try {
                for (long position = 0; position < size; position += CHUNK) {
                    ByteBuffer chunk = take(filled, reader, file);
                    consumer.accept(position, chunk.asReadOnlyBuffer());
                    chunks.recycle(chunk);
                }
                await(reader, file);
            } finally {
                chunks.stop();
                awaitQuietly(reader);
                filled.forEach(chunks::recycle);
                chunks.close();
            }
        }
    }

    /** The reader thread: fills free chunks in file order until the end, or until told to stop. */
    private static void readAhead(FileChannel channel, long size, Path file, Chunks chunks,
                                  BlockingQueue<ByteBuffer> filled) {
        try {
            for (long position = 0; position < size; position += CHUNK) {
                ByteBuffer chunk = chunks.free(file);
                if (chunk == null) {
                    return;
                }
                int wanted = (int) Math.min(CHUNK, size - position);
                chunk.limit(alignUp(wanted));
                while (chunk.position() < wanted) {
                    if (channel.read(chunk, position + chunk.position()) < 0) {
                        chunks.recycle(chunk);
                        throw new IOException(file + " ended at byte " + (position + chunk.position())
                                + " while reading it (truncated while open?)");
                    }
                }
                chunk.flip().limit(wanted);
                while (!filled.offer(chunk, POLL_MILLIS, TimeUnit.MILLISECONDS)) {
                    if (chunks.stopped()) {
                        chunks.recycle(chunk);
                        return;
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UncheckedIOException(new InterruptedIOException("interrupted while reading " + file));
        }
    }

    /** Opens with {@code O_DIRECT} where the file system allows it, else through the page cache. */
    private static FileChannel open(Path file, OpenOption... options) throws IOException {
        OpenOption[] direct = Arrays.copyOf(options, options.length + 1);
        direct[options.length] = ExtendedOpenOption.DIRECT;
        try {
            return FileChannel.open(file, direct);
        } catch (UnsupportedOperationException | IOException refused) {
            return FileChannel.open(file, options);
        }
    }

    private static int alignUp(int bytes) {
        return (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    /** Waits for a chunk the reader thread filled, or for the reader's failure. */
    private static ByteBuffer take(BlockingQueue<ByteBuffer> filled, CompletableFuture<Void> reader, Path file)
            throws IOException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(IO_DEADLINE_SECONDS);
        try {
            while (true) {
                ByteBuffer chunk = filled.poll(POLL_MILLIS, TimeUnit.MILLISECONDS);
                if (chunk != null) {
                    return chunk;
                }
                if (reader.isDone()) {
                    await(reader, file);
                    throw new IOException("reading " + file + " stopped before its end");
                }
                if (System.nanoTime() > deadline) {
                    throw new IOException("no bytes of " + file + " arrived in " + IO_DEADLINE_SECONDS
                            + " s (a hung disk or network mount?)");
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while reading " + file);
        }
    }

    private static void await(Future<?> io, Path file) throws IOException {
        try {
            io.get(IO_DEADLINE_SECONDS, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted during I/O on " + file);
        } catch (TimeoutException e) {
            throw new IOException("I/O on " + file + " did not finish in " + IO_DEADLINE_SECONDS
                    + " s (a hung disk or network mount?)");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause() instanceof UncheckedIOException u ? u.getCause() : e.getCause();
            if (cause instanceof IOException io2) {
                throw io2;
            }
            throw new IOException("I/O on " + file + " failed: " + cause, cause);
        }
    }

    /** Waits for an I/O thread that may have failed (its failure is reported elsewhere, or superseded). */
    private static void awaitQuietly(Future<?> io) {
        try {
            io.get(IO_DEADLINE_SECONDS, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException | CancellationException ignored) {
            // Reported by the caller's own failure, which is why we are stopping.
        }
    }

    /**
     * One file's staging chunks, {@link #IN_FLIGHT} of them, freed when the file is done, so a process holds
     * them only while it writes or reads a checkpoint.
     */
    private static final class Chunks implements AutoCloseable {
        private final BlockingQueue<ByteBuffer> free = new ArrayBlockingQueue<>(IN_FLIGHT);
        private final ArrayDeque<Future<?>> writes = new ArrayDeque<>();
        private final ByteBuffer[] allocations = new ByteBuffer[IN_FLIGHT];
        private volatile boolean stopped;

        Chunks() {
            for (int i = 0; i < IN_FLIGHT; i++) {
                allocations[i] = ByteBuffer.allocateDirect(CHUNK + ALIGNMENT);
                free.add(allocations[i].alignedSlice(ALIGNMENT));
            }
        }

        /** An empty chunk once one is free (written, or given back by the consumer); null once stopped. */
        ByteBuffer free(Path file) throws IOException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(IO_DEADLINE_SECONDS);
            try {
                while (true) {
                    ByteBuffer b = free.poll(POLL_MILLIS, TimeUnit.MILLISECONDS);
                    while (!writes.isEmpty() && writes.peek().isDone()) {
                        await(writes.poll(), file);
                    }
                    if (b != null) {
                        // An aligned slice may be up to one alignment longer than a chunk: use exactly a chunk.
                        return b.clear().limit(CHUNK);
                    }
                    if (stopped) {
                        return null;
                    }
                    if (System.nanoTime() > deadline) {
                        throw new IOException("no chunk of " + file + " was done in " + IO_DEADLINE_SECONDS
                                + " s (a hung disk or network mount?)");
                    }
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted during I/O on " + file);
            }
        }

        void recycle(ByteBuffer b) {
            free.add(b);
        }

        void stop() {
            stopped = true;
        }

        boolean stopped() {
            return stopped;
        }

        /** Writes {@code chunk} at {@code position} on an I/O thread; the chunk is free again once written. */
        void write(FileChannel channel, ByteBuffer chunk, long position) {
            writes.add(IO.submit(() -> {
                try {
                    long at = position;
                    while (chunk.hasRemaining()) {
                        at += channel.write(chunk, at);
                    }
                    return null;
                } finally {
                    free.add(chunk);
                }
            }));
        }

        void awaitAll(Path file) throws IOException {
            while (!writes.isEmpty()) {
                await(writes.poll(), file);
            }
        }

        /** Frees the chunks' memory now if every chunk is back (no I/O thread can touch it), else leaves it to GC. */
        @Override
        public void close() {
            stopped = true;
            writes.forEach(DirectFile::awaitQuietly);
            if (free.size() == IN_FLIGHT) {
                for (ByteBuffer b : allocations) {
                    BufferUtil.free(b);
                }
            }
        }
    }
}
