package dev.tessera.comm;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LocalProcessLauncherTest {

    @Test
    void workersGetEqualSharesOfTheAllowedCpus() {
        List<Integer> cpus = List.of(2, 3, 6, 7);
        assertEquals("2,3", LocalProcessLauncher.share(cpus, 0, 2));
        assertEquals("6,7", LocalProcessLauncher.share(cpus, 1, 2));
        assertEquals("7", LocalProcessLauncher.share(cpus, 3, 4));
    }

    @Test
    void moreWorkersThanCpusGoRoundRobin() {
        List<Integer> cpus = List.of(0, 1);
        assertEquals("0", LocalProcessLauncher.share(cpus, 0, 4));
        assertEquals("1", LocalProcessLauncher.share(cpus, 1, 4));
        assertEquals("0", LocalProcessLauncher.share(cpus, 2, 4));
        assertEquals("1", LocalProcessLauncher.share(cpus, 3, 4));
    }

    @Test
    void thisProcessHasAnAllowedCpuList() {
        assertFalse(HostCpus.allowed().isEmpty(), "Cpus_allowed_list of /proc/self/status");
        assertTrue(HostCpus.online() >= HostCpus.allowed().size());
    }

    @Test
    void workerOutputLeavesOutTheJvmsIncubatorNotice() throws Exception {
        try (LocalProcessLauncher launcher = new LocalProcessLauncher(
                List.of("-Xmx64m", "--add-modules", "jdk.incubator.vector"))) {
            LocalProcessLauncher.Worker w = launcher.start("noisy", SayAndExit.class.getName(),
                    List.of("the line that matters"), Map.of());
            assertEquals(3, w.waitFor(60_000));
            String raw = Files.readString(w.log());
            assertTrue(raw.startsWith("WARNING: Using incubator modules: "), raw);
            assertEquals("the line that matters\n", w.output());
        }
    }

    @Test
    void onlyTheIncubatorNoticeIsNoise() {
        assertTrue(JvmNoise.isNoise("WARNING: Using incubator modules: jdk.incubator.vector, jdk.incubator.foreign"));
        assertFalse(JvmNoise.isNoise("WARNING: A terminally deprecated method in java.lang.System has been called"));
        assertFalse(JvmNoise.isNoise("tessera: WARNING: Using incubator modules: quoted by a program"));
    }

    @Test
    void kernelCpuListsExpand() {
        assertEquals(List.of(0, 1, 2, 3, 8), HostCpus.parse("0-3,8"));
        assertEquals(List.of(5), HostCpus.parse("5"));
    }
}
