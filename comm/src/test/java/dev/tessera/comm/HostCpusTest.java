package dev.tessera.comm;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HostCpusTest {

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
