package dev.tessera.coordinator.launch;

import dev.tessera.comm.ChildJvm;
import dev.tessera.comm.JvmNoise;
import dev.tessera.comm.ProcessOwner;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ChildJvmsTest {

    @TempDir
    Path base;

    @Test
    void childrenGetEqualSharesOfTheAllowedCpus() {
        List<Integer> cpus = List.of(2, 3, 6, 7);
        assertEquals("2,3", ChildJvms.share(cpus, 0, 2));
        assertEquals("6,7", ChildJvms.share(cpus, 1, 2));
        assertEquals("7", ChildJvms.share(cpus, 3, 4));
    }

    @Test
    void moreChildrenThanCpusGoRoundRobin() {
        List<Integer> cpus = List.of(0, 1);
        assertEquals("0", ChildJvms.share(cpus, 0, 4));
        assertEquals("1", ChildJvms.share(cpus, 1, 4));
        assertEquals("0", ChildJvms.share(cpus, 2, 4));
        assertEquals("1", ChildJvms.share(cpus, 3, 4));
    }

    @Test
    void childOutputLeavesOutTheJvmsIncubatorNotice() throws Exception {
        try (ChildJvms jvms = new ChildJvms(List.of("-Xmx64m", "--add-modules", "jdk.incubator.vector"))) {
            ChildJvm c = jvms.start("noisy", SayAndExit.class.getName(), List.of("the line that matters"),
                    Map.of());
            assertEquals(3, c.waitFor(60_000));
            String raw = Files.readString(c.log());
            assertTrue(raw.startsWith("WARNING: Using incubator modules: "), raw);
            assertEquals("the line that matters\n", c.output());
        }
    }

    /** A prefix execs the JVM: the process started is the JVM itself, with its exit code. */
    @Test
    void aPrefixedChildIsTheJvmItself() {
        try (ChildJvms jvms = new ChildJvms(List.of("-Xmx64m"))) {
            ChildJvm c = jvms.start("prefixed", List.of("env", "TESSERA_PREFIX_TEST=1"),
                    SayAndExit.class.getName(), List.of("through env"), Map.of());
            assertEquals(3, c.waitFor(60_000));
            assertEquals("through env\n", c.output());
        }
    }

    @Test
    void onlyTheIncubatorNoticeIsNoise() {
        assertTrue(JvmNoise.isNoise("WARNING: Using incubator modules: jdk.incubator.vector, jdk.incubator.foreign"));
        assertFalse(JvmNoise.isNoise("WARNING: A terminally deprecated method in java.lang.System has been called"));
        assertFalse(JvmNoise.isNoise("tessera: WARNING: Using incubator modules: quoted by a program"));
    }

    @Test
    void logFoldersAreSweptOnlyWhenTheirOwnerIsGone() throws Exception {
        long now = System.currentTimeMillis();
        dirWithOwner("tessera-workers-dead", deadPid() + " " + now);
        dirWithOwner("tessera-workers-reused", ProcessHandle.current().pid() + " 1000"); // pid since given to us
        dirWithOwner("tessera-workers-alive", ProcessHandle.current().pid() + " " + now);
        dirWithOwner("tessera-workers-unknown", null);
        dirWithOwner("someone-elses-dead", deadPid() + " " + now);

        assertEquals(2, ChildJvms.sweepStale(base));
        assertEquals(Set.of("tessera-workers-alive", "tessera-workers-unknown", "someone-elses-dead"), left());
    }

    @Test
    void childJvmsRecordThisProcessAsTheOwnerOfTheLogFolderAndRemoveItOnClose() {
        Path logDir;
        try (ChildJvms jvms = new ChildJvms(List.of("-Xmx64m"))) {
            ChildJvm c = jvms.start("w", SayAndExit.class.getName(), List.of("hi"), Map.of());
            assertEquals(3, c.waitFor(60_000));
            logDir = c.log().getParent();
            ProcessOwner owner = ProcessOwner.readFrom(logDir).orElseThrow();
            assertEquals(ProcessHandle.current().pid(), owner.pid());
            assertFalse(owner.isGone());
        }
        assertFalse(Files.exists(logDir));
    }

    private static long deadPid() throws Exception {
        Process p = new ProcessBuilder("true").start();
        p.waitFor();
        return p.pid();
    }

    private void dirWithOwner(String name, String ownerLine) throws IOException {
        Path dir = Files.createDirectories(base.resolve(name));
        if (ownerLine != null) {
            Files.writeString(dir.resolve(ProcessOwner.FILE), ownerLine);
        }
        Files.writeString(dir.resolve("rank0.log"), "some output\n");
    }

    private Set<String> left() throws IOException {
        try (Stream<Path> list = Files.list(base)) {
            return list.map(p -> p.getFileName().toString()).collect(Collectors.toSet());
        }
    }
}
