package dev.tessera.worker.train;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** This process's peak resident memory so far (the kernel's high-water mark, VmHWM): heap, native and mapped. */
public final class PeakRss {

    private PeakRss() {
    }

    /** Bytes; -1 where /proc does not exist. */
    public static long bytes() {
        Path status = Path.of("/proc/self/status");
        if (!Files.isReadable(status)) {
            return -1;
        }
        try {
            for (String line : Files.readAllLines(status)) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.substring(6).trim().split("\\s+")[0]) * 1024;
                }
            }
            return -1;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + status, e);
        }
    }
}
