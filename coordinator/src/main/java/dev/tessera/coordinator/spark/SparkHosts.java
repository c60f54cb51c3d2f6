package dev.tessera.coordinator.spark;

import dev.tessera.coordinator.launch.LocalLauncher;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Which machine a process runs on, as the driver and its tasks compare them. */
final class SparkHosts {

    private static final Path BOOT_ID = Path.of("/proc/sys/kernel/random/boot_id");

    private SparkHosts() {
    }

    /**
     * The host name and boot id: two processes with the same one share /dev/shm, so a worker there can use the
     * coordinator's media driver. A host name alone is not enough (containers reuse them).
     */
    static String machineId() {
        String boot = "";
        try {
            boot = Files.isReadable(BOOT_ID) ? Files.readString(BOOT_ID).strip() : "";
        } catch (IOException e) {
            // no boot id: the host name alone decides
        }
        return LocalLauncher.hostName() + (boot.isEmpty() ? "" : "/" + boot);
    }
}
