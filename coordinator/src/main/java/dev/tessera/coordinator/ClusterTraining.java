package dev.tessera.coordinator;

import dev.tessera.comm.CommConfig;
import dev.tessera.comm.Communicator;
import dev.tessera.comm.DriverMode;
import dev.tessera.comm.LocalProcessLauncher;
import dev.tessera.comm.MediaDriverHost;
import dev.tessera.comm.PeerEndpoint;
import dev.tessera.comm.StaticPeerDirectory;
import dev.tessera.comm.UserInputException;
import dev.tessera.comm.control.Assignment;
import dev.tessera.comm.control.CheckpointReport;
import dev.tessera.comm.control.ControlMessage;
import dev.tessera.comm.control.EvalReport;
import dev.tessera.comm.control.StepReport;
import dev.tessera.comm.control.WorkerFinished;
import dev.tessera.coordinator.cli.TrainAction;
import dev.tessera.coordinator.config.JobConfig;
import dev.tessera.coordinator.run.ProgressBar;
import dev.tessera.coordinator.run.RunDirectory;
import dev.tessera.coordinator.run.RunRecorder;
import dev.tessera.coordinator.run.RunSummary;
import dev.tessera.worker.blas.BlasKernel;
import dev.tessera.worker.checkpoint.Checkpoint;
import dev.tessera.worker.checkpoint.CheckpointWriter;
import dev.tessera.worker.cluster.ClusterNode;
import dev.tessera.worker.cluster.ClusterSettings;
import dev.tessera.worker.cluster.MemberInfo;
import dev.tessera.worker.data.TokenSource;
import dev.tessera.worker.model.Transformer;
import dev.tessera.worker.parallel.Mesh;
import dev.tessera.worker.run.Rendezvous;
import dev.tessera.worker.run.TrainerState;
import dev.tessera.worker.run.WorkerArgs;
import dev.tessera.worker.run.WorkerJob;
import dev.tessera.worker.train.StepMetrics;
import dev.tessera.worker.train.TrainingListener;
import dev.tessera.worker.train.TrainingLoop;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.ToLongFunction;

/**
 * Trains a job on a mesh of several worker processes on this host. The coordinator holds the Aeron media driver
 * (one per host, shared), a Hazelcast member (membership, rendezvous), and Aeron rank {@code W} (the workers
 * are {@code 0..W-1}); it assigns each worker its rank over Aeron, turns rank 0's reports into the run
 * directory and the progress bar, and stops everything when a worker dies, freezes or fails.
 */
public final class ClusterTraining implements TrainAction {

    /** Longest any single wait of the data plane may take (connect, a collective, a send). */
    static final long COMM_DEADLINE_MS = 30_000;
    /** Longest the coordinator waits between two reports before it calls the job stuck. */
    static final long PROGRESS_DEADLINE_MS = 10 * 60_000;

    private final PrintStream out;

    public ClusterTraining(PrintStream out) {
        this.out = out;
    }

    /**
     * Runs the job; with {@code restart.max_restarts: N}, a job that fails (not a user error) is relaunched up to N
     * times, each time from the newest complete checkpoint of its run directory (from the start if there is none).
     */
    @Override
    public int run(JobConfig job, RunDirectory directory, Path resume) throws Exception {
        long wallStart = System.nanoTime();
        Checkpoint checkpoint = resume == null ? null : Checkpoint.open(resume);
        BlasKernel.inUse(); // refuses a kernel that computes wrong results before any work starts
        for (int restarts = 0; ; restarts++) {
            try {
                return attempt(job, directory, checkpoint, wallStart);
            } catch (JobFailedException e) {
                if (restarts >= job.restart().maxRestarts()) {
                    throw e;
                }
                Optional<Path> latest = Checkpoint.latest(directory.root());
                checkpoint = latest.map(Checkpoint::open).orElse(checkpoint);
                out.printf("job failed: %s%nrestart %d of %d from %s%n", e.getMessage(), restarts + 1,
                        job.restart().maxRestarts(), checkpoint == null ? "the start" : checkpoint.dir());
            }
        }
    }

    private int attempt(JobConfig job, RunDirectory directory, Checkpoint checkpoint, long wallStart)
            throws Exception {
        WorkerJob workerJob = job.toWorkerJob(directory.root(), checkpoint == null ? null : checkpoint.dir());
        long completed = checkpoint == null ? 0 : checkpoint.step();
        TokenSource data = workerJob.data().open(job.train().seqLen());
        long params = Transformer.layout(workerJob.model()).tensors().stream().mapToLong(t -> t.numel()).sum();
        int world = job.mesh().world();
        out.println("data: " + data.describe());
        LocalTraining.describeModel(out, workerJob.model(), params, directory);
        out.printf("mesh: dp %d, sp %d, ep %d: %d worker processes on this host%n", job.mesh().dp(), job.mesh().sp(),
                job.mesh().ep(), world);
        if (checkpoint != null) {
            out.println("resuming from " + checkpoint.dir() + " at step " + completed);
        }

        String jobId = "job-" + HexFormat.of().formatHex(random(6));
        String token = HexFormat.of().formatHex(random(32));
        String hostId = hostId();
        String aeronDir = MediaDriverHost.directoryFor(jobId, "host");
        MediaDriverHost.sweepStale(Path.of(aeronDir).getParent());
        int aeronPort = job.launch().aeronPort();
        List<WorkerArgs> ranks = new ArrayList<>();
        for (int r = 0; r < world; r++) {
            ranks.add(new WorkerArgs(jobId, r, world, hostId, job.launch().hazelcastPort(), aeronDir, aeronPort,
                    COMM_DEADLINE_MS));
        }
        BlockingQueue<MemberInfo> lost = new LinkedBlockingQueue<>();
        ProgressBar bar = ProgressBar.forStandardOutput();
        try (MediaDriverHost driver = MediaDriverHost.launch(aeronDir, CommConfig.MAX_MTU, 16 << 20);
             ClusterNode node = ClusterNode.join(ClusterSettings.loopback(jobId, token, job.launch().hazelcastPort(),
                     world + 1), MemberInfo.COORDINATOR, -1);
             LocalWorkers workers = LocalWorkers.start(ranks, token, job.launch().workerMemoryMb());
             RunRecorder recorder = checkpoint != null
                     ? RunRecorder.resume(directory, bar, completed) : RunRecorder.open(directory, bar)) {
            node.onMemberLost(lost::add);
            PeerEndpoint self = new PeerEndpoint(world, hostId, "127.0.0.1", aeronPort + world);
            var peers = awaitRendezvous(node, self, workers, lost, world);
            CommConfig config = CommConfig.defaults(jobId, token).withDriver(DriverMode.SHARED_PER_HOST, aeronDir)
                    .withDeadlineMs(COMM_DEADLINE_MS);
            try (Communicator comm = Communicator.connect(config, peers, world)) {
                String json = workerJob.toJson();
                for (int r = 0; r < world; r++) {
                    comm.sendControl(r, new Assignment(r, job.mesh().dp(), job.mesh().sp(), job.mesh().ep(), json));
                }
                recorder.listener().onStart(completed, job.train().steps());
                WorkerFinished[] finished = supervise(comm, workers, lost, recorder.listener(), job.mesh().toMesh(),
                        workerJob.job());
                WorkerFinished rank0 = finished[0];
                workers.awaitExit(COMM_DEADLINE_MS);
                TrainingLoop.Result result = new TrainingLoop.Result(rank0.steps, rank0.tokens, rank0.finalLoss,
                        rank0.evalLoss, rank0.tokensPerSecond, rank0.trainSeconds,
                        rank0.exposedCommFraction * rank0.trainSeconds);
                RunSummary summary = RunSummary.of(result, data, (System.nanoTime() - wallStart) / 1e9, params,
                        maxOver(finished, f -> f.paramBytes), maxOver(finished, f -> f.gradBytes),
                        maxOver(finished, f -> f.stateBytes), BlasKernel.inUse(), workerJob.job());
                recorder.finish(summary, "Tessera: " + directory.root().getFileName());
                out.printf("communication: %.1f%% of step time spent waiting for gradient reductions%n",
                        100 * rank0.exposedCommFraction);
                out.println(summary.doneLine(directory.summaryFile()));
            }
        }
        return 0;
    }

    /** Memory is reported for the fullest rank: under ZeRO the ranks' peaks differ with where their shard lies. */
    private static long maxOver(WorkerFinished[] finished, ToLongFunction<WorkerFinished> bytes) {
        long max = 0;
        for (WorkerFinished f : finished) {
            max = Math.max(max, bytes.applyAsLong(f));
        }
        return max;
    }

    /** Waits for every process's endpoint, failing at once if a worker dies while starting. */
    private static StaticPeerDirectory awaitRendezvous(ClusterNode node, PeerEndpoint self, LocalWorkers workers,
            BlockingQueue<MemberInfo> lost, int world) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(COMM_DEADLINE_MS * 2);
        while (true) {
            checkAlive(workers, lost);
            try {
                return Rendezvous.await(node, self, world + 1, Duration.ofMillis(1));
            } catch (TimeoutException e) {
                if (System.nanoTime() > deadline) {
                    throw new JobFailedException(e.getMessage().replace("within 0 s", "within "
                            + COMM_DEADLINE_MS * 2 / 1000 + " s"));
                }
            }
        }
    }

    /**
     * Relays rank 0's reports to {@code listener} until every worker has finished, completing the checkpoints
     * the workers stage; returns every rank's final report, by rank.
     * Fails when a worker reports an error, exits, leaves the cluster, or nothing arrives for too long.
     */
    private static WorkerFinished[] supervise(Communicator comm, LocalWorkers workers, BlockingQueue<MemberInfo> lost,
                                            TrainingListener listener, Mesh mesh, Map<String, Object> job)
            throws InterruptedException {
        int world = mesh.world();
        WorkerFinished[] finished = new WorkerFinished[world];
        int done = 0;
        long lastReport = System.nanoTime();
        while (done < world) {
            ControlMessage m = comm.pollControlMessage();
            if (m == null) {
                checkAlive(workers, lost);
                if (System.nanoTime() - lastReport > TimeUnit.MILLISECONDS.toNanos(PROGRESS_DEADLINE_MS)) {
                    throw new JobFailedException("no report from the workers for " + PROGRESS_DEADLINE_MS / 1000
                            + " s; the job is stuck");
                }
                Thread.sleep(5); // reports are a few per second; polling faster only takes a core from the workers
                continue;
            }
            lastReport = System.nanoTime();
            if (m instanceof StepReport s) {
                listener.onStep(new StepMetrics(s.step, s.loss, s.auxLoss, s.lr, s.gradNorm, s.tokensPerSecond,
                        s.stepSeconds, s.exposedCommSeconds));
            } else if (m instanceof EvalReport e) {
                listener.onEval(e.step, e.loss);
            } else if (m instanceof CheckpointReport c) {
                listener.onCheckpoint(c.step, CheckpointWriter.finish(Path.of(c.path), c.step,
                        TrainerState.of(c.step, mesh, job)));
            } else if (m instanceof WorkerFinished f) {
                if (f.error != null) {
                    if (f.userError) {
                        throw new UserInputException(f.error);
                    }
                    if (f.suspectRank >= 0) { // blame the rank that went silent, not the one that noticed
                        throw new JobFailedException(describe(workers, f.suspectRank) + " stopped answering ("
                                + "rank " + f.rank + ": " + f.error + ")");
                    }
                    throw new JobFailedException(describe(workers, f.rank) + " failed: " + f.error);
                }
                if (finished[f.rank] == null) {
                    finished[f.rank] = f;
                    done++;
                }
            }
        }
        return finished;
    }

    /** Fails naming the rank and host when a worker has left the cluster or its process has exited. */
    private static void checkAlive(LocalWorkers workers, BlockingQueue<MemberInfo> lost) {
        MemberInfo gone = lost.poll();
        if (gone != null) {
            throw new JobFailedException(gone.describe() + " died or stopped answering; stopping the job");
        }
        for (int r = 0; r < workers.count(); r++) {
            LocalProcessLauncher.Worker w = workers.worker(r);
            if (!w.process().isAlive() && w.process().exitValue() != 0) {
                throw new JobFailedException(describe(workers, r) + " exited with code " + w.process().exitValue()
                        + lastLine(w));
            }
        }
    }

    private static String describe(LocalWorkers workers, int rank) {
        return "worker rank " + rank + " (pid " + workers.worker(rank).process().pid() + " on " + hostName() + ")";
    }

    /** The worker's last line that is not part of a stack trace: what it said when it failed. */
    private static String lastLine(LocalProcessLauncher.Worker w) {
        String[] lines = w.output().strip().split("\n");
        for (int i = lines.length - 1; i >= 0; i--) {
            String line = lines[i].strip();
            if (!line.isEmpty() && !line.startsWith("at ") && !line.startsWith("...") && !line.startsWith("Caused by")) {
                return ": " + line;
            }
        }
        return "";
    }

    private static byte[] random(int bytes) {
        byte[] b = new byte[bytes];
        new SecureRandom().nextBytes(b);
        return b;
    }

    /** Processes with the same host id share the media driver and talk over IPC. */
    private static String hostId() {
        return hostName() + "-" + ProcessHandle.current().pid();
    }

    private static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            return "localhost";
        }
    }
}
