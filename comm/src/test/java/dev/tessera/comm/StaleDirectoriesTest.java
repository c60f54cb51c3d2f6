package dev.tessera.comm;

import io.aeron.CncFileDescriptor;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
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

    private Path dirWithOwner(String name, String ownerLine) throws IOException {
        Path dir = Files.createDirectories(base.resolve(name));
        if (ownerLine != null) {
            Files.writeString(dir.resolve(ProcessOwner.FILE), ownerLine);
        }
        Files.writeString(dir.resolve("rank0.log"), "some output\n");
        return dir;
    }

    private Set<String> left() throws IOException {
        try (Stream<Path> list = Files.list(base)) {
            return list.map(p -> p.getFileName().toString()).collect(Collectors.toSet());
        }
    }

    @Test
    void workerLogFoldersAreSweptOnlyWhenTheirOwnerIsGone() throws Exception {
        long now = System.currentTimeMillis();
        dirWithOwner("tessera-workers-dead", deadPid() + " " + now);
        dirWithOwner("tessera-workers-reused", ProcessHandle.current().pid() + " 1000"); // pid since given to us
        dirWithOwner("tessera-workers-alive", ProcessHandle.current().pid() + " " + now);
        dirWithOwner("tessera-workers-unknown", null);
        dirWithOwner("someone-elses-dead", deadPid() + " " + now);

        assertEquals(2, LocalProcessLauncher.sweepStale(base));
        assertEquals(Set.of("tessera-workers-alive", "tessera-workers-unknown", "someone-elses-dead"), left());
    }

    @Test
    void aLauncherRecordsItselfAsTheOwnerOfItsLogFolderAndRemovesItOnClose() throws Exception {
        Path logDir;
        try (LocalProcessLauncher launcher = new LocalProcessLauncher(List.of("-Xmx64m"))) {
            LocalProcessLauncher.Worker w = launcher.start("w", SayAndExit.class.getName(), List.of("hi"), java.util.Map.of());
            assertEquals(3, w.waitFor(60_000));
            logDir = w.log().getParent();
            ProcessOwner owner = ProcessOwner.readFrom(logDir).orElseThrow();
            assertEquals(ProcessHandle.current().pid(), owner.pid());
            assertFalse(owner.isGone());
        }
        assertFalse(Files.exists(logDir));
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
