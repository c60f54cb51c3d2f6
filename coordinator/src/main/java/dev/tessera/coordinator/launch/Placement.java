package dev.tessera.coordinator.launch;

import dev.tessera.comm.DriverMode;

/**
 * Where one process of a job runs, as its {@link Launcher} placed it.
 *
 * @param hostId  processes with the same id share a host: its media driver, so IPC and symmetric memory between
 *                them; processes on different hosts talk over UDP
 * @param address the one address the process binds for Hazelcast and Aeron UDP, and where the others reach it
 * @param driver  {@link DriverMode#SHARED_PER_HOST}: it uses the media driver the coordinator runs on its host;
 *                {@link DriverMode#PER_PROCESS}: it runs its own (a host the coordinator is not on)
 */
public record Placement(String hostId, String address, DriverMode driver) {
}
