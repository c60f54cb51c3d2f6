package dev.tessera.coordinator;

import dev.tessera.comm.control.CheckpointReport;
import dev.tessera.comm.control.ControlMessage;
import dev.tessera.comm.control.EvalReport;
import dev.tessera.comm.control.StepReport;
import dev.tessera.comm.control.WorkerFinished;
import dev.tessera.coordinator.launch.Launcher;
import dev.tessera.coordinator.launch.LocalLauncher;
import dev.tessera.coordinator.run.ProgressBar;
import dev.tessera.coordinator.run.RunDirectory;
import dev.tessera.coordinator.run.RunRecorder;
import dev.tessera.coordinator.run.RunSummary;
import dev.tessera.worker.blas.BlasKernel;
import dev.tessera.worker.io.AtomicFiles;
import dev.tessera.worker.checkpoint.Checkpoint;
import dev.tessera.worker.checkpoint.CheckpointWriter;
import dev.tessera.worker.data.TokenSource;
import dev.tessera.worker.model.Transformer;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.parallel.Mesh;
import dev.tessera.worker.run.Assignment;
import dev.tessera.worker.run.TrainerState;
import dev.tessera.worker.run.WorkerJob;
import dev.tessera.worker.model.MoeStats;
import dev.tessera.worker.train.StepMetrics;
import dev.tessera.worker.train.TrainingListener;
import dev.tessera.worker.train.TrainingLoop;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;
import java.util.function.ToLongFunction;

/**
 * Trains a job on a mesh of several worker processes. Each attempt's workers are started by a {@link Launcher}
 * (worker JVMs on this host by default) and seen through by a {@link Supervisor}; this class turns rank 0's
 * reports into the run directory and the progress bar, and the final reports into the summary.
 */
public final class ClusterTraining implements TrainAction {

    /** The file in a run directory that lists the cluster job ids of its attempts. */
    public static final String JOB_IDS = "cluster-jobs.txt";

    private final Function<JobConfig, Launcher> launchers;

    /** Workers as child processes of this one, on {@code launch.bind_address} ({@link LocalLauncher#onThisHost}). */
    public ClusterTraining() {
        this(job -> LocalLauncher.onThisHost(job.launch().bindAddress(), job.mesh().world(),
                job.launch().workerMemoryMb()));
    }

    /** Workers started by {@code launchers}: one new launcher for each attempt of the job. */
    public ClusterTraining(Function<JobConfig, Launcher> launchers) {
        this.launchers = launchers;
    }

    /**
     * Runs the job; with {@code restart.max_restarts: N}, a job that fails (not a user error) is relaunched up to N
     * times, each time from the newest complete checkpoint of its run directory (from the start if there is none).
     */
    @Override
    public RunSummary run(TrainRequest request) throws Exception {
        JobConfig job = request.job();
        RunDirectory directory = request.directory();
        Path resume = request.resumeOrNull();
        PrintStream out = request.log();
        long wallStart = System.nanoTime();
        Checkpoint resumed = resume == null ? null : Checkpoint.open(resume);
        BlasKernel.inUse(); // refuses a kernel that computes wrong results before any work starts
        long jobStartStep = resumed == null ? 0 : resumed.step();
        return Supervisor.restarting(job.restart().maxRestarts(), out, restarts -> {
            Checkpoint checkpoint = resumed;
            if (restarts > 0) {
                checkpoint = Checkpoint.latest(directory.root(), System.err::println).map(Checkpoint::open)
                        .orElse(resumed);
                if (checkpoint == null) {
                    out.println("no checkpoint yet: training again from the start");
                }
            }
            return attempt(request, checkpoint, wallStart, jobStartStep, restarts);
        });
    }

    /** One launch of the job's workers; the summary counts the whole job, from {@code jobStartStep} on. */
    private RunSummary attempt(TrainRequest request, Checkpoint checkpoint, long wallStart, long jobStartStep,
                               int restarts) throws Exception {
        JobConfig job = request.job();
        RunDirectory directory = request.directory();
        PrintStream out = request.log();
        // Absolute: a worker on another host (over ssh) starts in another working folder.
        WorkerJob workerJob = WorkerJob.of(job, directory.root().toAbsolutePath(),
                checkpoint == null ? null : checkpoint.dir().toAbsolutePath());
        Assignment.requireFits(workerJob);
        long completed = checkpoint == null ? 0 : checkpoint.step();
        TokenSource data = workerJob.data().open(job.train().seqLen());
        long params = Transformer.layout(workerJob.model()).tensors().stream().mapToLong(t -> t.numel()).sum();
        int world = job.mesh().world();
        out.println("data: " + data.describe());
        data.warnings().forEach(System.err::println);
        LocalTraining.describeModel(out, workerJob.model(), params, directory);
        out.printf("mesh: dp %d, sp %d, ep %d: %d worker processes%n", job.mesh().dp(), job.mesh().sp(),
                job.mesh().ep(), world);
        if (checkpoint != null) {
            out.println("resuming from " + checkpoint.dir() + " at step " + completed);
        }

        Supervisor supervisor = new Supervisor(world, job.launch(), job.fault(), out);
        recordJobId(directory.root(), supervisor.jobId());
        Mesh mesh = job.mesh().toMesh();
        Map<String, Object> jobMap = job.toMap();
        try (RunRecorder recorder = RunRecorder.open(directory, ProgressBar.on(out), completed,
                job.checkpoint().retention(), request.listener())) {
            TrainingListener listener = recorder.listener();
            WorkerFinished[] finished = supervisor.run(launchers.apply(job), new Supervisor.JobSide() {
                @Override
                public ControlMessage assignment(int rank) {
                    return new Assignment(rank, workerJob);
                }

                @Override
                public void assigned() {
                    listener.onStart(completed, job.train().steps());
                }

                @Override
                public void report(ControlMessage m) {
                    if (m instanceof StepReport s) {
                        listener.onStep(new StepMetrics(s.step, s.loss, s.auxLoss, s.lr, s.gradNorm,
                                s.tokensPerSecond, s.stepSeconds, s.exposedCommSeconds, s.attentionWaitSeconds,
                                s.wireBytes, new MoeStats(s.moeExperts, s.moeLayers), choice(s)));
                    } else if (m instanceof EvalReport e) {
                        listener.onEval(e.step, e.loss);
                    } else if (m instanceof CheckpointReport c) {
                        listener.onCheckpoint(c.step, CheckpointWriter.finish(Path.of(c.path), c.step,
                                TrainerState.of(c.step, mesh, jobMap)));
                    }
                }
            });
            WorkerFinished rank0 = finished[0];
            TrainingLoop.Result result = new TrainingLoop.Result(rank0.steps, rank0.tokens, rank0.finalLoss,
                    rank0.evalLoss, rank0.tokensPerSecond, rank0.trainSeconds,
                    rank0.exposedCommFraction * rank0.trainSeconds);
            RunSummary summary = RunSummary.of(result, data, (System.nanoTime() - wallStart) / 1e9, params,
                    maxOver(finished, f -> f.paramBytes), maxOver(finished, f -> f.gradBytes),
                    maxOver(finished, f -> f.peakRssBytes),
                    maxOver(finished, f -> f.stateBytes), BlasKernel.inUse(), jobMap);
            long jobSteps = completed + rank0.steps - jobStartStep;
            summary = summary.forJob(jobSteps, jobSteps * job.train().batchSize() * job.train().seqLen(),
                    restarts);
            recorder.finish(summary, "Tessera: " + directory.root().getFileName());
            out.printf("communication: %.1f%% of step time spent waiting for gradient reductions%n",
                    100 * rank0.exposedCommFraction);
            out.println(summary.doneLine(directory.summaryFile()));
            return summary;
        }
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

    /** L-GreCo's choice a step report carries, layer by layer in the order sent. */
    private static Map<String, Double> choice(StepReport s) {
        Map<String, Double> choice = new LinkedHashMap<>();
        for (int i = 0; i < s.choiceLayers.length; i++) {
            choice.put(s.choiceLayers[i], s.choiceValues[i]);
        }
        return choice;
    }
}
