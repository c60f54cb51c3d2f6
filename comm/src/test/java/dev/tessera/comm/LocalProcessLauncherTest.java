package dev.tessera.comm;

import org.junit.jupiter.api.Test;

import java.util.List;

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
    void kernelCpuListsExpand() {
        assertEquals(List.of(0, 1, 2, 3, 8), HostCpus.parse("0-3,8"));
        assertEquals(List.of(5), HostCpus.parse("5"));
    }
}
