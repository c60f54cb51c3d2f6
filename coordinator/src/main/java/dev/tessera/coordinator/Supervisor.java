package dev.tessera.coordinator;

import dev.tessera.comm.CommConfig;
import dev.tessera.comm.Communicator;
import dev.tessera.comm.DriverMode;
import dev.tessera.comm.MediaDriverHost;
import dev.tessera.comm.PeerEndpoint;
import dev.tessera.comm.StaticPeerDirectory;
import dev.tessera.comm.Transport;
import dev.tessera.comm.UserInputException;
import dev.tessera.comm.control.ControlMessage;
import dev.tessera.comm.control.WorkerFinished;
import dev.tessera.worker.job.FaultSection;
import dev.tessera.worker.job.LaunchSection;
import dev.tessera.coordinator.launch.Launcher;
import dev.tessera.coordinator.launch.Placement;
import dev.tessera.worker.cluster.ClusterJoinException;
import dev.tessera.worker.cluster.ClusterNode;
import dev.tessera.worker.cluster.ClusterSettings;
import dev.tessera.worker.cluster.MemberInfo;
import dev.tessera.worker.run.Assignment;
import dev.tessera.worker.run.Rendezvous;
import dev.tessera.worker.run.WorkerArgs;
import java.io.PrintStream;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Sees one attempt of a cluster job through, however its workers were launched. It runs this host's media driver
 * and a Hazelcast member (membership, rendezvous) and is Aeron rank {@code W} (the workers are {@code 0..W-1});
 * it starts the workers through a {@link Launcher}, each told where to bind and whom to join, hands each its
 * assignment, relays the reports, and fails the attempt naming the rank when a worker exits, stops, leaves the
 * cluster or goes silent ({@link WorkerWatch}). {@link #restarting} runs attempts under the job's restart policy.
 */
final class Supervisor {

    /** What an attempt needs from the job it runs. */
    interface JobSide {

        /** The assignment message of rank {@code rank}. */
        ControlMessage assignment(int rank);

        /** Every worker has its assignment: training starts now. */
        void assigned();

        /** A step, eval or checkpoint report, as it arrives. */
        void report(ControlMessage report);
    }

    /** One launch of a job's workers; {@code restarts} counts the failed launches before it. */
    interface Attempt<T> {
        T run(int restarts) throws Exception;
    }

    private final String jobId = "job-" + HexFormat.of().formatHex(random(6));
    private final String token = HexFormat.of().formatHex(random(32));
    private final int world;
    private final LaunchSection launch;
    private final FaultSection fault;
    private final PrintStream out;
    private final PortPicker portPicker = PortPicker.onThisHost();

    Supervisor(int world, LaunchSection launch, FaultSection fault, PrintStream out) {
        this.world = world;
        this.launch = launch;
        this.fault = fault;
        this.out = out;
    }

    /** Names this attempt's processes and its Aeron directories. */
    String jobId() {
        return jobId;
    }

    /**
     * Runs {@code attempt}, and again after each {@link JobFailedException} while {@code maxRestarts} allows; a
     * user's error is never retried.
     */
    static <T> T restarting(int maxRestarts, PrintStream out, Attempt<T> attempt) throws Exception {
        for (int restarts = 0; ; restarts++) {
            try {
                return attempt.run(restarts);
            } catch (JobFailedException e) {
                if (restarts >= maxRestarts) {
                    throw e;
                }
                out.printf("job failed: %s%nrestart %d of %d%n", e.getMessage(), restarts + 1, maxRestarts);
            }
        }
    }

    /**
     * Starts the workers through {@code launcher} (which this closes, ending them), supervises them until every
     * one has finished, and returns their final reports by rank.
     */
    WorkerFinished[] run(Launcher launcher, JobSide job) throws Exception {
        try {
            return supervise(launcher, job);
        } finally {
            launcher.close(); // again, when it failed before the workers started
            // A worker with a driver of its own that was killed left its directory behind: its owner is gone now.
            MediaDriverHost.sweepStale(MediaDriverHost.baseDirectory());
        }
    }

    private WorkerFinished[] supervise(Launcher launcher, JobSide job) throws Exception {
        long deadMs = fault.deadAfterS() * 1000L; // every silence limit: a starved peer is not dead before it
        Placement home = launcher.coordinator();
        List<Placement> workers = placements(launcher);
        List<String> addresses = new ArrayList<>();
        workers.forEach(w -> addresses.add(w.address()));
        addresses.add(home.address());
        // Ports of 0 are picked here, once per attempt, free on the coordinator's address: a restart may get others.
        // Workers in network namespaces of their own bind the same numbers there, where nothing else holds them.
        PortPicker.Ports ports = portPicker.pick(home.address(), world + 1, launch.hazelcastPort(),
                launch.aeronPort());
        List<String> seeds = ClusterSettings.seeds(addresses, ports.hazelcast());
        ClusterSettings settings = ClusterSettings.member(jobId, token, home.address(), ports.hazelcast(), seeds,
                fault.deadAfterS());
        if (launch.hazelcastPort() != 0) { // a picked range was just found free, more strictly than this checks
            HazelcastPorts.requireFree(settings.bindHost(), settings.port(), settings.portCount());
        }
        out.println("cluster: " + jobId + ", Hazelcast ports " + settings.portRange()
                + (launch.aeronPort() == 0 ? ", Aeron ports " + ports.aeron() + ".." + (ports.aeron() + world) : "")
                + (home.address().equals(ClusterSettings.LOOPBACK) ? "" : " on " + home.address()));
        String aeronDir = MediaDriverHost.directoryFor(jobId, "host");
        MediaDriverHost.sweepStale(Path.of(aeronDir).getParent());
        BlockingQueue<MemberInfo> lost = new LinkedBlockingQueue<>();
        // The workers end first: the driver and the cluster member then close with no one left to wait for.
        try (MediaDriverHost driver = MediaDriverHost.launch(aeronDir, CommConfig.MAX_MTU, 16 << 20, deadMs);
             ClusterNode node = joinCluster(settings);
             Launcher started = launcher) {
            node.onMemberLost(lost::add);
            for (int r = 0; r < world; r++) {
                Placement at = workers.get(r);
                String dir = at.driver() == DriverMode.SHARED_PER_HOST ? aeronDir
                        : MediaDriverHost.directoryFor(jobId, "r" + r);
                started.start(new WorkerArgs(jobId, r, world, at.hostId(), ports.hazelcast(), dir,
                        ports.aeron(), deadMs, launch.transport(), at.address(), seeds, at.driver()),
                        Map.of(CommConfig.TOKEN_ENV, token));
            }
            WorkerWatch watch = new WorkerWatch(started, world, lost, fault, out);
            PeerEndpoint self = new PeerEndpoint(world, home.hostId(), home.address(), ports.aeron() + world);
            StaticPeerDirectory peers = awaitRendezvous(node, self, watch, 2 * deadMs);
            CommConfig config = CommConfig.defaults(jobId, token).withDriver(DriverMode.SHARED_PER_HOST, aeronDir)
                    .withDeadlineMs(deadMs).withTransport(launch.transport())
                    .withControlTypes(Assignment.CONTROL_TYPES);
            try (Communicator comm = connect(config, peers, watch)) {
                for (int r = 0; r < world; r++) {
                    comm.sendControl(r, job.assignment(r));
                }
                job.assigned();
                WorkerFinished[] finished = relay(comm, watch, job);
                started.awaitExit(deadMs);
                return finished;
            }
        }
    }

    /**
     * Where the launcher put each rank, checked against what the data plane assumes: a worker shares the
     * coordinator's driver only on the coordinator's host, one with a driver of its own is alone on its host, and
     * {@code launch.transport: ipc} needs every worker on the coordinator's host.
     */
    private List<Placement> placements(Launcher launcher) {
        Placement home = launcher.coordinator();
        List<Placement> workers = new ArrayList<>();
        Set<String> hosts = new HashSet<>(Set.of(home.hostId()));
        for (int r = 0; r < world; r++) {
            Placement at = launcher.placement(r);
            boolean shared = at.driver() == DriverMode.SHARED_PER_HOST;
            if (shared != at.hostId().equals(home.hostId()) || (!shared && !hosts.add(at.hostId()))) {
                throw new IllegalStateException("the launcher placed rank " + r + " on host " + at.hostId() + " with "
                        + at.driver() + ": only workers on the coordinator's host " + home.hostId() + " share its"
                        + " media driver, and a worker with a driver of its own must be alone on its host");
            }
            if (!shared && launch.transport() == Transport.IPC) {
                throw new UserInputException("launch.transport: ipc needs every worker on the coordinator's host, but"
                        + " rank " + r + " runs on " + at.hostId() + "; use auto or udp");
            }
            workers.add(at);
        }
        return workers;
    }

    /** Joins as the coordinator; a join that does not complete is a failed job that names the ports. */
    private static ClusterNode joinCluster(ClusterSettings settings) {
        try {
            return ClusterNode.join(settings, MemberInfo.COORDINATOR, -1);
        } catch (ClusterJoinException e) {
            throw new JobFailedException(e.getMessage());
        }
    }

    /** Waits for every process's endpoint, failing at once if a worker dies or stops while starting. */
    private StaticPeerDirectory awaitRendezvous(ClusterNode node, PeerEndpoint self, WorkerWatch watch,
                                                long deadlineMs) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(deadlineMs);
        while (true) {
            watch.check();
            try {
                return Rendezvous.await(node, self, world + 1, Duration.ofMillis(1));
            } catch (TimeoutException e) {
                if (System.nanoTime() > deadline) {
                    throw new JobFailedException(e.getMessage().replace("within 0 s", "within "
                            + deadlineMs / 1000 + " s"));
                }
            }
        }
    }

    /**
     * Connects rank {@code world} (this process) to the workers. The handshake may wait up to the silence limit
     * for a starved worker, so it runs on its own thread while this one keeps watching for exited and stopped
     * workers; a communicator that connects after the job gave up is closed. Its own thread, not a shared pool:
     * a pool busy with other work (other jobs of this JVM) would leave the handshake unstarted and the wait endless.
     */
    private Communicator connect(CommConfig config, StaticPeerDirectory peers, WorkerWatch watch)
            throws InterruptedException {
        CompletableFuture<Communicator> connecting = new CompletableFuture<>();
        Thread handshake = new Thread(() -> {
            try {
                connecting.complete(Communicator.connect(config, peers, world));
            } catch (Throwable e) {
                connecting.completeExceptionally(e);
            }
        }, "tessera-connect");
        handshake.setDaemon(true);
        handshake.start();
        try {
            while (true) {
                try {
                    return connecting.get(20, TimeUnit.MILLISECONDS);
                } catch (TimeoutException stillConnecting) {
                    watch.check();
                }
            }
        } catch (ExecutionException e) {
            throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
        } finally {
            if (!connecting.isDone()) {
                connecting.thenAccept(Communicator::close);
            }
        }
    }

    /**
     * Hands the workers' reports to {@code job} until every worker has finished; returns every rank's final
     * report, by rank. Fails when a worker reports an error, exits, leaves the cluster, or nothing arrives for too
     * long.
     */
    private WorkerFinished[] relay(Communicator comm, WorkerWatch watch, JobSide job) throws InterruptedException {
        Launcher launcher = watch.launcher();
        WorkerFinished[] finished = new WorkerFinished[world];
        int done = 0;
        watch.reported();
        while (done < world) {
            ControlMessage m = comm.pollControlMessage();
            if (m == null) {
                watch.check();
                watch.checkSilence();
                Thread.sleep(5); // reports are a few per second; polling faster only takes a core from the workers
                continue;
            }
            watch.reported();
            if (m instanceof WorkerFinished f) {
                if (f.error != null) {
                    if (f.userError) {
                        throw new UserInputException(f.error);
                    }
                    if (f.suspectRank >= 0) { // blame the rank that went silent, not the one that noticed
                        throw new JobFailedException(launcher.describe(f.suspectRank) + " stopped answering ("
                                + "rank " + f.rank + ": " + f.error + ")");
                    }
                    throw new JobFailedException(launcher.describe(f.rank) + " failed: " + f.error);
                }
                if (finished[f.rank] == null) {
                    finished[f.rank] = f;
                    done++;
                }
            } else {
                job.report(m);
            }
        }
        return finished;
    }

    private static byte[] random(int bytes) {
        byte[] b = new byte[bytes];
        new SecureRandom().nextBytes(b);
        return b;
    }
}
