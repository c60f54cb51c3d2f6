/**
 * Data plane: Aeron transport, collectives on process groups, Kryo control messages.
 *
 * <h2>Pieces</h2>
 * <ul>
 *   <li>{@link dev.tessera.comm.MediaDriverHost}: one embedded media driver per host per job (SHARED threading),
 *       directory {@code /dev/shm/tessera-<job>-<tag>} with an owner pid file; stale directories of dead owners
 *       are swept, the directory is deleted on close and by a shutdown hook.</li>
 *   <li>{@link dev.tessera.comm.Communicator}: one per process; an exclusive data and control publication to
 *       every peer (IPC when the peer shares this host's driver, else UDP with a 64 KB MTU), a token handshake
 *       ({@link dev.tessera.comm.control.Hello}) that binds Aeron sessions to ranks, and the poll loop that
 *       lands each frame straight in the destination buffer (copy, or reduce for the ring's reduce steps).</li>
 *   <li>{@link dev.tessera.comm.ProcessGroup}: collectives on any subset of ranks, sync or async
 *       ({@link dev.tessera.comm.CollectiveHandle}); small payloads take one-hop or recursive-doubling
 *       algorithms, large ones the pipelined ring; reduction order is fixed, results bit-identical on all
 *       members.</li>
 *   <li>{@link dev.tessera.comm.SymmetricMemory}: memory every member of a group on this host maps
 *       ({@link dev.tessera.comm.ProcessGroup#allocateSymmetric}); collectives on buffers inside it
 *       ({@code SymmetricCollective}) read the other members' memory directly between counter barriers instead of
 *       copying through Aeron. The trainer keeps its data-parallel gradients there. Large all-reduces of
 *       ordinary buffers on one host go chunk by chunk through each group's small staging area (also
 *       shared memory) when the group has no more members than the host has cores.</li>
 *   <li>{@link dev.tessera.comm.PeerDirectory}: where ranks listen ({@link dev.tessera.comm.StaticPeerDirectory}
 *       for tests and the benchmark; the coordinator's rendezvous later).</li>
 *   <li>Host and process facts the launchers above build on: {@link dev.tessera.comm.HostCpus},
 *       {@link dev.tessera.comm.ProcessOwner}, {@link dev.tessera.comm.ProcessState}, and
 *       {@link dev.tessera.comm.ChildJvm} (how one JVM on this class path is started; the tests of every module
 *       start their helper processes with it).</li>
 * </ul>
 *
 * <h2>Frames</h2>
 * A data frame is one Aeron fragment: a 32-byte header ({@code DataFrame}) and up to {@code mtu - 64} bytes
 * of payload, written with {@code tryClaim} straight from the caller's memory. Frames name (group, sequence,
 * source, step, offset); the receiver checks all of them against the receive it posted before touching
 * memory.
 *
 * <h2>Failure</h2>
 * Every wait has the configured deadline; errors are {@link dev.tessera.comm.CommException}s naming the
 * operation, the group and the peer rank. A rank whose operation fails tells the group's members
 * ({@link dev.tessera.comm.control.Abort}) so they stop at once instead of timing out one after another.
 */
package dev.tessera.comm;
