package dev.tessera.worker.job;

import dev.tessera.comm.Transport;
import dev.tessera.worker.cluster.ClusterSettings;

/**
 * {@code launch:} where the workers run and what each may use. {@code workers} is the number of worker
 * processes that will exist (0 = exactly the mesh's world size); planning requires it to equal the world size.
 * Ports are the first of a range of world size + 1: Hazelcast takes {@code hazelcast_port} upwards, Aeron UDP
 * endpoints {@code aeron_port} upwards (IPC between processes of one host needs none). 0 (the default for both) picks
 * a free range at each launch, as torchrun's port 0 does; the coordinator passes the chosen ports to the workers.
 * {@code transport}: {@code auto} is
 * IPC between processes of one host and UDP across hosts; {@code udp} sends even local frames through UDP sockets
 * (what a multi-host job does), {@code ipc} only works on one host. {@code bind_address}: the address of this host
 * that the coordinator's Hazelcast member and the local launcher's workers bind (Hazelcast and Aeron UDP) and where
 * they reach each other; loopback unless the job's processes must be reachable from elsewhere.
 */
public record LaunchSection(LauncherKind launcher, int workers, int workerMemoryMb, int hazelcastPort,
                            int aeronPort, Transport transport, String bindAddress) {

    public static LaunchSection defaults() {
        return new LaunchSection(LauncherKind.LOCAL, 0, 4096, 0, 0, Transport.AUTO, ClusterSettings.LOOPBACK);
    }

    /** The worker count planning works with: the configured one, or the world size when 0. */
    public int workersFor(MeshSection mesh) {
        return workers == 0 ? mesh.world() : workers;
    }
}
