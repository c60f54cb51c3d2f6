package dev.tessera.worker.data;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Several files seen as one read-only byte sequence, memory-mapped in windows of at most
 * {@link #MAX_WINDOW} bytes (a single map is limited to 2 GB), so totals of any size stay off the heap.
 */
final class MappedBytes {

    static final long MAX_WINDOW = 1L << 30;

    private final long[] starts;
    private final MappedByteBuffer[] windows;
    private final long length;

    MappedBytes(List<Path> files) {
        this(files, MAX_WINDOW);
    }

    /** Tests pass a tiny {@code windowSize} to exercise reads that cross windows and files. */
    MappedBytes(List<Path> files, long windowSize) {
        if (windowSize <= 0 || windowSize > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("window size " + windowSize);
        }
        List<Long> startList = new ArrayList<>();
        List<MappedByteBuffer> windowList = new ArrayList<>();
        long total = 0;
        for (Path file : files) {
            // The mapping outlives the channel, so the file handle is released at once.
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                long size = ch.size();
                for (long pos = 0; pos < size; pos += windowSize) {
                    long len = Math.min(windowSize, size - pos);
                    windowList.add(ch.map(FileChannel.MapMode.READ_ONLY, pos, len));
                    startList.add(total + pos);
                }
                total += size;
            } catch (IOException e) {
                throw new UncheckedIOException("cannot map " + file, e);
            }
        }
        this.length = total;
        this.windows = windowList.toArray(new MappedByteBuffer[0]);
        this.starts = startList.stream().mapToLong(Long::longValue).toArray();
    }

    long length() {
        return length;
    }

    /** Copies bytes {@code [pos, pos+count)} as unsigned values into {@code dst[dstOffset..]}. */
    void read(long pos, int count, int[] dst, int dstOffset) {
        if (pos < 0 || count < 0 || pos + count > length) {
            throw new IndexOutOfBoundsException("bytes [" + pos + ", " + (pos + count) + ") of " + length);
        }
        int w = window(pos);
        int inWindow = (int) (pos - starts[w]);
        for (int i = 0; i < count; i++) {
            while (inWindow >= windows[w].limit()) {
                w++;
                inWindow = 0;
            }
            dst[dstOffset + i] = windows[w].get(inWindow++) & 0xFF;
        }
    }

    /** Index of the window holding {@code pos}: the last window starting at or before it. */
    private int window(long pos) {
        int lo = 0;
        int hi = starts.length - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (starts[mid] <= pos) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        return lo;
    }
}
