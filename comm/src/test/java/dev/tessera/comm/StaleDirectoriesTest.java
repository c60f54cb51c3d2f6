package dev.tessera.comm;

import io.aeron.CncFileDescriptor;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What a killed job leaves on the host is found by its owner and removed; everything else stays. */
class StaleDirectoriesTest {

    @TempDir
    Path base;

    static long deadPid() throws Exception {
        Process p = new ProcessBuilder("true").start();
        p.waitFor();
        return p.pid();
    }

    private Set<String> left() throws IOException {
        try (Stream<Path> list = Files.list(base)) {
            return list.map(p -> p.getFileName().toString()).collect(Collectors.toSet());
        }
    }

    @Test
    void aerondirectoryWithoutOwnerFileIsJudgedByTheDriverPidInItsCncFile() throws Exception {
        Path dead = Files.createDirectories(base.resolve("tessera-job-cnc-dead-host"));
        writeCnc(dead, deadPid(), System.currentTimeMillis());
        Path alive = Files.createDirectories(base.resolve("tessera-job-cnc-alive-host"));
        writeCnc(alive, ProcessHandle.current().pid(), System.currentTimeMillis());
        Path reused = Files.createDirectories(base.resolve("tessera-job-cnc-reused-host"));
        writeCnc(reused, ProcessHandle.current().pid(), 1000);

        assertTrue(MediaDriverHost.isStale(dead));
        assertFalse(MediaDriverHost.isStale(alive));
        assertTrue(MediaDriverHost.isStale(reused));
        assertEquals(2, MediaDriverHost.sweepStale(base));
        assertEquals(Set.of("tessera-job-cnc-alive-host"), left());
    }

    @Test
    void aRealDriversDirectoryNamesThisProcessInItsCncFile() {
        String dir = base.resolve("tessera-job-real-host").toString();
        try (MediaDriverHost driver = MediaDriverHost.launch(dir, CommConfig.MAX_MTU, 1 << 20)) {
            ProcessOwner owner = ProcessOwner.fromAeronCnc(Path.of(dir)).orElseThrow();
            assertEquals(ProcessHandle.current().pid(), owner.pid());
            assertFalse(MediaDriverHost.isStale(Path.of(dir)));
        }
    }

    /** The metadata part of a CnC file as Aeron writes it, ready flag included. */
    private static void writeCnc(Path dir, long pid, long startMillis) throws IOException {
        ByteBuffer bytes = ByteBuffer.allocate(CncFileDescriptor.META_DATA_LENGTH);
        UnsafeBuffer meta = CncFileDescriptor.createMetaDataBuffer(bytes);
        CncFileDescriptor.fillMetaData(meta, 1024, 1024, 1024, 1024, 1_000_000_000L, 1024, startMillis, pid, 4096);
        CncFileDescriptor.signalCncReady(meta);
        Files.write(dir.resolve(CncFileDescriptor.CNC_FILE), bytes.array());
    }
}
