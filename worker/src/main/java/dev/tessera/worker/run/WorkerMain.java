package dev.tessera.worker.run;

import dev.tessera.comm.CommConfig;
import dev.tessera.comm.CommException;
import dev.tessera.comm.Communicator;
import dev.tessera.comm.PeerEndpoint;
import dev.tessera.comm.UserInputException;
import dev.tessera.comm.control.ControlMessage;
import dev.tessera.comm.control.WorkerFinished;
import dev.tessera.worker.blas.BlasKernel;
import dev.tessera.worker.cluster.ClusterJoinException;
import dev.tessera.worker.cluster.ClusterNode;
import dev.tessera.worker.cluster.ClusterSettings;
import dev.tessera.worker.cluster.MemberInfo;
import dev.tessera.worker.parallel.DeviceMesh;
import dev.tessera.worker.parallel.MemoryProbe;
import dev.tessera.worker.parallel.Mesh;
import dev.tessera.worker.train.MemorySampling;
import dev.tessera.worker.train.PeakRss;
import dev.tessera.worker.train.TrainingLoop;
import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A worker process: joins the job's cluster, publishes its Aeron endpoint, connects to every other process,
 * takes its assignment from the coordinator, trains its replica and reports. It never outlives the job: it
 * stops when the coordinator's process or any cluster member goes away.
 */
public final class WorkerMain {

    private final WorkerArgs args;
    private final AtomicBoolean finishing = new AtomicBoolean();

    private WorkerMain(WorkerArgs args) {
        this.args = args;
    }

    public static void main(String[] argv) {
        BlasKernel.choose(); // before anything loads OpenBLAS, which reads its kernel only then
        WorkerArgs args = WorkerArgs.parse(argv);
        watchParent(args.rank());
        int code;
        try {
            code = new WorkerMain(args).run();
        } catch (Throwable e) { // Hazelcast's threads would keep a JVM whose main thread died alive: a zombie rank
            System.err.println("rank " + args.rank() + " failed: " + e);
            e.printStackTrace();
            code = 1;
        }
        System.out.flush();
        // Hazelcast and ND4J leave non-daemon threads behind; the job is over for this process.
        Runtime.getRuntime().halt(code);
    }

    private int run() {
        String token = CommConfig.tokenFromEnvironment();
        int coordinator = args.world();
        // The coordinator's silence limit (fault.dead_after_s) arrives as the deadline: one limit for every wait.
        int deadAfterSeconds = (int) Math.max(2, args.deadlineMs() / 1000);
        ClusterSettings cluster = ClusterSettings.member(args.jobId(), token, args.bindAddress(), args.hazelcastPort(),
                args.seeds(), deadAfterSeconds);
        try (ClusterNode node = ClusterNode.join(cluster, MemberInfo.WORKER, args.rank())) {
            node.onMemberLost(this::memberLost);
            PeerEndpoint self = new PeerEndpoint(args.rank(), args.hostId(), args.bindAddress(),
                    args.aeronPort() + args.rank());
            var directory = Rendezvous.await(node, self, args.world() + 1, Duration.ofMillis(args.deadlineMs()));
            CommConfig config = CommConfig.defaults(args.jobId(), token).withTransport(args.transport())
                    .withDriver(args.driver(), args.aeronDir()).withDeadlineMs(args.deadlineMs())
                    .withControlTypes(Assignment.CONTROL_TYPES);
            try (Communicator comm = Communicator.connect(config, directory, args.rank())) {
                return train(comm, coordinator);
            }
        } catch (TimeoutException | ClusterJoinException e) {
            System.err.println("rank " + args.rank() + ": " + e.getMessage());
            return 1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 1;
        }
    }

    private int train(Communicator comm, int coordinator) {
        try {
            Assignment assignment = awaitAssignment(comm);
            BlasKernel.inUse(); // refuses a kernel that computes wrong results, as the user's error
            WorkerJob job = assignment.readableJob();
            DeviceMesh mesh = DeviceMesh.create(comm, job.spec().mesh().toMesh());
            MemoryProbe probe = MemoryProbe.on();
            Replica replica = Replica.build(job, mesh, assignment.experts(), assignment.positions(), probe);
            TrainingLoop.Result result = replica.train(new MemorySampling(probe, replica.model().parameters(),
                    new CoordinatorReporter(comm, coordinator, args.rank())));
            // Leave together: a rank that left early would look like a crash to one still writing a checkpoint.
            finishing.set(true);
            mesh.workers().barrier();
            WorkerFinished done = new WorkerFinished();
            done.rank = args.rank();
            done.steps = result.steps();
            done.tokens = result.tokens();
            done.finalLoss = result.finalLoss();
            done.evalLoss = result.evalLoss();
            done.tokensPerSecond = result.tokensPerSecond();
            done.trainSeconds = result.trainSeconds();
            done.stateBytes = replica.optimizer().stateBytes();
            done.paramBytes = probe.peakParamBytes();
            done.gradBytes = probe.peakGradBytes();
            done.peakRssBytes = PeakRss.bytes();
            done.exposedCommFraction = result.trainSeconds() > 0 ? result.commWaitSeconds() / result.trainSeconds() : 0;
            comm.sendControl(coordinator, done);
            return 0;
        } catch (RuntimeException | IOException | Error e) { // an Error too: the coordinator should hear why
            finishing.set(true);
            String message = e.getMessage() == null ? e.toString() : e.getMessage();
            System.err.println("rank " + args.rank() + " failed: " + message);
            e.printStackTrace();
            try {
                int suspect = e instanceof CommException c && c.peerRank() >= 0 && c.peerRank() < args.world()
                        ? c.peerRank() : -1;
                comm.sendControl(coordinator, WorkerFinished.failed(args.rank(), message,
                        e instanceof UserInputException, suspect));
            } catch (RuntimeException unreachable) {
                System.err.println("rank " + args.rank() + ": could not tell the coordinator: " + unreachable.getMessage());
            }
            return 1;
        }
    }

    private Assignment awaitAssignment(Communicator comm) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(args.deadlineMs());
        while (System.nanoTime() < deadline) {
            ControlMessage m = comm.pollControlMessage();
            if (m instanceof Assignment a) {
                if (a.rank() != args.rank()) {
                    throw new IllegalStateException("rank " + args.rank() + " received the assignment of rank " + a.rank());
                }
                return a;
            }
            if (m == null) {
                Thread.onSpinWait();
            }
        }
        throw new IllegalStateException("rank " + args.rank() + ": no assignment from the coordinator within "
                + args.deadlineMs() + " ms");
    }

    private void memberLost(MemberInfo member) {
        if (!finishing.get()) {
            System.err.println("rank " + args.rank() + ": " + member.describe() + " left the job; stopping");
            System.err.flush();
            Runtime.getRuntime().halt(1);
        }
    }

    /** A killed coordinator cannot stop its workers, so each worker watches it and stops with it. */
    private static void watchParent(int rank) {
        ProcessHandle parent = ProcessHandle.current().parent().orElse(null);
        if (parent == null) {
            return;
        }
        Thread watcher = new Thread(() -> {
            while (parent.isAlive()) {
                try {
                    Thread.sleep(500);
                } catch (InterruptedException e) {
                    return;
                }
            }
            System.err.println("rank " + rank + ": the coordinator process " + parent.pid() + " is gone; stopping");
            Runtime.getRuntime().halt(1);
        }, "tessera-parent-watch");
        watcher.setDaemon(true);
        watcher.start();
    }
}
