package dev.tessera.coordinator;

import dev.tessera.comm.CommConfig;
import dev.tessera.comm.Communicator;
import dev.tessera.comm.DriverMode;
import dev.tessera.comm.MediaDriverHost;
import dev.tessera.comm.PeerEndpoint;
import dev.tessera.comm.StaticPeerDirectory;
import dev.tessera.comm.UserInputException;
import dev.tessera.comm.control.CheckpointReport;
import dev.tessera.comm.control.ControlMessage;
import dev.tessera.comm.control.EvalReport;
import dev.tessera.comm.control.StepReport;
import dev.tessera.comm.control.WorkerFinished;
import dev.tessera.coordinator.cli.TrainAction;
import dev.tessera.coordinator.run.ProgressBar;
import dev.tessera.coordinator.run.RunDirectory;
import dev.tessera.coordinator.run.RunRecorder;
import dev.tessera.coordinator.run.RunSummary;
import dev.tessera.worker.checkpoint.AtomicFiles;
import dev.tessera.worker.blas.BlasKernel;
import dev.tessera.worker.checkpoint.Checkpoint;
import dev.tessera.worker.checkpoint.CheckpointWriter;
import dev.tessera.worker.cluster.ClusterJoinException;
import dev.tessera.worker.cluster.ClusterNode;
import dev.tessera.worker.cluster.ClusterSettings;
import dev.tessera.worker.cluster.MemberInfo;
import dev.tessera.worker.data.TokenSource;
import dev.tessera.worker.model.Transformer;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.parallel.Mesh;
import dev.tessera.worker.run.Assignment;
import dev.tessera.worker.run.Rendezvous;
import dev.tessera.worker.run.TrainerState;
import dev.tessera.worker.run.WorkerArgs;
import dev.tessera.worker.run.WorkerJob;
import dev.tessera.worker.train.StepMetrics;
import dev.tessera.worker.train.TrainingListener;
import dev.tessera.worker.train.TrainingLoop;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.ToLongFunction;
import java.util.regex.Pattern;

/**
 * Trains a job on a mesh of several worker processes on this host. The coordinator holds the Aeron media driver
 * (one per host, shared), a Hazelcast member (membership, rendezvous), and Aeron rank {@code W} (the workers
 * are {@code 0..W-1}); it assigns each worker its rank over Aeron, turns rank 0's reports into the run
 * directory and the progress bar, and stops everything when a worker dies, freezes or fails.
 */
public final class ClusterTraining implements TrainAction {

    /** The file in a run directory that lists the cluster job ids of its attempts. */
    public static final String JOB_IDS = "cluster-jobs.txt";

    /** The JVM's own notices on a worker's output ("WARNING: Using incubator modules", VM warnings). */
    private static final Pattern JVM_NOTICE =
            Pattern.compile("^(WARNING: |OpenJDK .*VM warning: |Java HotSpot.*VM warning: |Picked up ).*");

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
        long jobStartStep = checkpoint == null ? 0 : checkpoint.step();
        for (int restarts = 0; ; restarts++) {
            try {
                return attempt(job, directory, checkpoint, wallStart, jobStartStep, restarts);
            } catch (JobFailedException e) {
                if (restarts >= job.restart().maxRestarts()) {
                    throw e;
                }
                Optional<Path> latest = Checkpoint.latest(directory.root(), System.err::println);
                checkpoint = latest.map(Checkpoint::open).orElse(checkpoint);
                out.printf("job failed: %s%nrestart %d of %d from %s%n", e.getMessage(), restarts + 1,
                        job.restart().maxRestarts(), checkpoint == null ? "the start" : checkpoint.dir());
            }
        }
    }

    /** One launch of the job's workers; the summary counts the whole job, from {@code jobStartStep} on. */
    private int attempt(JobConfig job, RunDirectory directory, Checkpoint checkpoint, long wallStart,
                        long jobStartStep, int restarts) throws Exception {
        WorkerJob workerJob = WorkerJob.of(job, directory.root(), checkpoint == null ? null : checkpoint.dir());
        Assignment.requireFits(workerJob);
        long completed = checkpoint == null ? 0 : checkpoint.step();
        TokenSource data = workerJob.data().open(job.train().seqLen());
        long params = Transformer.layout(workerJob.model()).tensors().stream().mapToLong(t -> t.numel()).sum();
        int world = job.mesh().world();
        out.println("data: " + data.describe());
        data.warnings().forEach(System.err::println);
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
        // Every silence limit is the user's fault.dead_after_s: a starved peer is not dead before it.
        long deadMs = job.fault().deadAfterS() * 1000L;
        List<WorkerArgs> ranks = new ArrayList<>();
        for (int r = 0; r < world; r++) {
            ranks.add(new WorkerArgs(jobId, r, world, hostId, job.launch().hazelcastPort(), aeronDir, aeronPort,
                    deadMs, job.launch().transport()));
        }
        ClusterSettings clusterSettings = ClusterSettings.loopback(jobId, token, job.launch().hazelcastPort(),
                world + 1, job.fault().deadAfterS());
        HazelcastPorts.requireFree(clusterSettings.bindHost(), clusterSettings.port(), clusterSettings.portCount());
        out.println("cluster: " + jobId + ", Hazelcast ports " + clusterSettings.portRange());
        recordJobId(directory.root(), jobId);
        BlockingQueue<MemberInfo> lost = new LinkedBlockingQueue<>();
        ProgressBar bar = ProgressBar.forStandardOutput();
        try (MediaDriverHost driver = MediaDriverHost.launch(aeronDir, CommConfig.MAX_MTU, 16 << 20, deadMs);
             ClusterNode node = joinCluster(clusterSettings);
             LocalWorkers workers = LocalWorkers.start(ranks, token, job.launch().workerMemoryMb());
             RunRecorder recorder = RunRecorder.open(directory, bar, completed, job.checkpoint().retention())) {
            node.onMemberLost(lost::add);
            WorkerWatch watch = new WorkerWatch(workers, lost, job.fault(), out);
            PeerEndpoint self = new PeerEndpoint(world, hostId, "127.0.0.1", aeronPort + world);
            var peers = awaitRendezvous(node, self, watch, world, 2 * deadMs);
            CommConfig config = CommConfig.defaults(jobId, token).withDriver(DriverMode.SHARED_PER_HOST, aeronDir)
                    .withDeadlineMs(deadMs).withTransport(job.launch().transport())
                    .withControlTypes(Assignment.CONTROL_TYPES);
            try (Communicator comm = connect(config, peers, world, watch)) {
                for (int r = 0; r < world; r++) {
                    comm.sendControl(r, new Assignment(r, workerJob));
                }
                recorder.listener().onStart(completed, job.train().steps());
                WorkerFinished[] finished = supervise(comm, watch, recorder.listener(), job.mesh().toMesh(),
                        job.toMap());
                WorkerFinished rank0 = finished[0];
                workers.awaitExit(deadMs);
                TrainingLoop.Result result = new TrainingLoop.Result(rank0.steps, rank0.tokens, rank0.finalLoss,
                        rank0.evalLoss, rank0.tokensPerSecond, rank0.trainSeconds,
                        rank0.exposedCommFraction * rank0.trainSeconds);
                RunSummary summary = RunSummary.of(result, data, (System.nanoTime() - wallStart) / 1e9, params,
                        maxOver(finished, f -> f.paramBytes), maxOver(finished, f -> f.gradBytes),
                        maxOver(finished, f -> f.stateBytes), BlasKernel.inUse(), job.toMap());
                long jobSteps = completed + rank0.steps - jobStartStep;
                summary = summary.forJob(jobSteps, jobSteps * job.train().batchSize() * job.train().seqLen(),
                        restarts);
                recorder.finish(summary, "Tessera: " + directory.root().getFileName());
                out.printf("communication: %.1f%% of step time spent waiting for gradient reductions%n",
                        100 * rank0.exposedCommFraction);
                out.println(summary.doneLine(directory.summaryFile()));
            }
        }
        return 0;
    }

    /**
     * Appends {@code jobId} to the run's {@value #JOB_IDS} (one line per attempt): what names the job's processes
     * and its Aeron directory, so that whoever looks for what a run left behind finds exactly its own.
     */
    static void recordJobId(Path runDir, String jobId) throws IOException {
        Path file = runDir.resolve(JOB_IDS);
        String before = Files.exists(file) ? Files.readString(file) : "";
        AtomicFiles.writeString(file, before + jobId + "\n");
    }

    /** Memory is reported for the fullest rank: under ZeRO the ranks' peaks differ with where their shard lies. */
    private static long maxOver(WorkerFinished[] finished, ToLongFunction<WorkerFinished> bytes) {
        long max = 0;
        for (WorkerFinished f : finished) {
            max = Math.max(max, bytes.applyAsLong(f));
        }
        return max;
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
    private static StaticPeerDirectory awaitRendezvous(ClusterNode node, PeerEndpoint self, WorkerWatch watch,
                                                       int world, long deadlineMs) throws InterruptedException {
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
    private static Communicator connect(CommConfig config, StaticPeerDirectory peers, int world, WorkerWatch watch)
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
     * Relays rank 0's reports to {@code listener} until every worker has finished, completing the checkpoints
     * the workers stage; returns every rank's final report, by rank.
     * Fails when a worker reports an error, exits, leaves the cluster, or nothing arrives for too long.
     */
    private static WorkerFinished[] supervise(Communicator comm, WorkerWatch watch, TrainingListener listener,
                                            Mesh mesh, Map<String, Object> job) throws InterruptedException {
        int world = mesh.world();
        LocalWorkers workers = watch.workers();
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

    static String describe(LocalWorkers workers, int rank) {
        return "worker rank " + rank + " (pid " + workers.worker(rank).process().pid() + " on " + hostName() + ")";
    }

    /**
     * The worker's last line that is not part of a stack trace nor one of the JVM's own notices: what it said
     * when it failed.
     */
    static String lastLine(String output) {
        String[] lines = output.strip().split("\n");
        for (int i = lines.length - 1; i >= 0; i--) {
            String line = lines[i].strip();
            if (!line.isEmpty() && !line.startsWith("at ") && !line.startsWith("...") && !line.startsWith("Caused by")
                    && !JVM_NOTICE.matcher(line).matches()) {
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
