package dev.tessera.coordinator.launch;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Issue 12: a dead worker's "last line" was the JVM's incubator warning. */
class WorkerLastLineTest {

    @Test
    void theJvmsNoticesAreNotWhatTheWorkerSaid() {
        String output = "WARNING: Using incubator modules: jdk.incubator.vector, jdk.incubator.foreign\n"
                + "rank 1 failed: out of memory in the MoE block\n"
                + "java.lang.IllegalStateException: out of memory in the MoE block\n"
                + "\tat dev.tessera.worker.Foo.bar(Foo.java:1)\n"
                + "OpenJDK 64-Bit Server VM warning: Sharing is only supported for boot loader classes\n"
                + "WARNING: Using incubator modules: jdk.incubator.vector\n";
        assertEquals(": java.lang.IllegalStateException: out of memory in the MoE block",
                LocalLauncher.lastLine(output));
    }

    @Test
    void nothingButNoticesSaysNothing() {
        assertEquals("", LocalLauncher.lastLine("WARNING: Using incubator modules: jdk.incubator.vector\n"));
    }
}
