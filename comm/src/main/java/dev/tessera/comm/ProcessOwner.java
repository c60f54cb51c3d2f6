package dev.tessera.comm;

import io.aeron.CncFileDescriptor;
import org.agrona.concurrent.UnsafeBuffer;

import java.io.IOException;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.Optional;

/**
 * The process that owns a directory Tessera leaves on the host while it runs (an Aeron directory under /dev/shm,
 * a worker log folder under /tmp): its pid and a time by which it had started. The owner is gone when no live
 * process has that pid, or when the live one started later than that: the pid was reused by another program.
 * A stopped (SIGSTOP) owner is alive: its directory stays.
 */
public record ProcessOwner(long pid, long startedByMillis) {

    /** Name of the owner file Tessera writes into each such directory: {@code "<pid> <start time, epoch ms>"}. */
    public static final String FILE = "tessera-owner.pid";

    /**
     * Start times are derived from the boot time and clock ticks, which wobble by about a second, and a CnC file's
     * driver start is read from the wall clock; a process that started this much later than recorded is another.
     */
    private static final long START_SLACK_MILLIS = 5_000;

    /** This process, with its start time as the kernel reports it (the same source {@link #isGone} reads). */
    static ProcessOwner current() {
        ProcessHandle me = ProcessHandle.current();
        return new ProcessOwner(me.pid(), me.info().startInstant().map(Instant::toEpochMilli).orElse(Long.MAX_VALUE));
    }

    /** Records this process as the owner of {@code dir}. */
    public static void writeTo(Path dir) throws IOException {
        ProcessOwner me = current();
        String started = me.startedByMillis == Long.MAX_VALUE ? "" : " " + me.startedByMillis;
        Files.writeString(dir.resolve(FILE), me.pid + started, StandardCharsets.US_ASCII);
    }

    /** The owner recorded in {@code dir}'s owner file; one with only a pid (older Tessera) is judged by the pid. */
    public static Optional<ProcessOwner> readFrom(Path dir) {
        try {
            String[] parts = Files.readString(dir.resolve(FILE), StandardCharsets.US_ASCII).trim().split("\\s+");
            long startedBy = parts.length > 1 ? Long.parseLong(parts[1]) : Long.MAX_VALUE;
            return Optional.of(new ProcessOwner(Long.parseLong(parts[0]), startedBy));
        } catch (IOException | NumberFormatException e) {
            return Optional.empty();
        }
    }

    /**
     * The media driver that made Aeron directory {@code dir}, from its CnC file (pid and driver start time, which
     * Aeron writes before it marks the file ready); empty when there is no ready CnC file.
     */
    static Optional<ProcessOwner> fromAeronCnc(Path dir) {
        Path cnc = dir.resolve(CncFileDescriptor.CNC_FILE);
        try (FileChannel ch = FileChannel.open(cnc, StandardOpenOption.READ)) {
            if (ch.size() < CncFileDescriptor.META_DATA_LENGTH) {
                return Optional.empty();
            }
            MappedByteBuffer bytes = ch.map(FileChannel.MapMode.READ_ONLY, 0, CncFileDescriptor.META_DATA_LENGTH);
            UnsafeBuffer meta = CncFileDescriptor.createMetaDataBuffer(bytes);
            if (meta.getIntVolatile(CncFileDescriptor.cncVersionOffset(0)) == 0) {
                return Optional.empty(); // the driver has not finished writing it
            }
            return Optional.of(new ProcessOwner(CncFileDescriptor.pid(meta), CncFileDescriptor.startTimestampMs(meta)));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    /** Whether the owner has exited, or its pid now belongs to a process that started after it. */
    public boolean isGone() {
        Optional<ProcessHandle> process = ProcessHandle.of(pid).filter(ProcessHandle::isAlive);
        if (process.isEmpty()) {
            return true;
        }
        Optional<Instant> started = process.get().info().startInstant();
        return startedByMillis != Long.MAX_VALUE && started.isPresent()
                && started.get().toEpochMilli() > startedByMillis + START_SLACK_MILLIS;
    }
}
