package dev.tessera.coordinator;

import dev.tessera.comm.MediaDriverHost;
import dev.tessera.comm.UserInputException;
import dev.tessera.coordinator.config.ClusterFile;
import dev.tessera.coordinator.config.ConfigOverride;
import dev.tessera.coordinator.config.JobConfigLoader;
import dev.tessera.coordinator.launch.ChildJvms;
import dev.tessera.coordinator.launch.EnvironmentLaunchers;
import dev.tessera.coordinator.launch.Launcher;
import dev.tessera.coordinator.run.CompositeListener;
import dev.tessera.coordinator.run.RunDirectory;
import dev.tessera.coordinator.run.RunSummary;
import dev.tessera.worker.blas.BlasKernel;
import dev.tessera.worker.checkpoint.Checkpoint;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.job.LauncherKind;
import dev.tessera.worker.train.TrainingListener;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.function.Function;

/**
 * Trains a model from Java; {@code tessera train} is a thin layer over this class. The job is the same spec as
 * the YAML, with the same keys and the same checks:
 * <pre>{@code
 * TrainResult result = Trainer.builder()
 *         .config(Path.of("job.yaml"))          // optional, any number of files
 *         .set("model.d_model", 128)            // any YAML key, dotted
 *         .set("optimizer.name", OptimizerKind.CAME)
 *         .set("mesh.dp", 2)                    // two worker processes
 *         .out(Path.of("runs/my-run"))
 *         .listener(myProgressListener)
 *         .build()                              // resolves and validates: UserInputException names the key
 *         .fit();                               // trains; the summary, run directory and final checkpoint
 * }</pre>
 * Layers apply from general to specific: the defaults (or {@link Builder#job}), the stored config of a run being
 * resumed, each {@link Builder#config} file, then each {@link Builder#set} in call order.
 */
public final class Trainer {

    private final JobConfig job;
    private final Path out;
    private final Path resumeArgument;
    private final Checkpoint resume;
    private final TrainingListener listener;
    private final PrintStream log;
    private final TrainAction action;

    private Trainer(Builder b, JobConfig job, Checkpoint resume) {
        this.job = job;
        this.out = b.out;
        this.resumeArgument = b.resume;
        this.resume = resume;
        this.listener = new CompositeListener(b.listeners);
        this.log = b.log;
        this.action = b.action;
    }

    /**
     * A builder over the default job. Picks this CPU's OpenBLAS kernel ({@link BlasKernel#choose}) if nothing has
     * yet, so call it before anything else in the JVM uses ND4J.
     */
    public static Builder builder() {
        BlasKernel.choose();
        return new Builder();
    }

    /** The resolved job this trainer runs (its {@code out} is the configured one; {@link #fit} picks the final). */
    public JobConfig job() {
        return job;
    }

    /**
     * Creates the run directory (or reopens the resumed one), writes config.yaml, and trains. Returns when the
     * run has ended; throws a {@link dev.tessera.comm.UserInputException} for bad input found on the way (an
     * output directory that is not empty, a data file that cannot be read) and {@link JobFailedException} when
     * the workers failed more often than {@code restart.max_restarts} allows.
     */
    public TrainResult fit() throws Exception {
        if (action == TrainAction.DEFAULT && job.launch().launcher() == LauncherKind.CLUSTER) {
            throw new UserInputException("launch.launcher: cluster runs on the hosts of a cluster file: start it with"
                    + " ./tessera launch CLUSTER.yaml (see deploy/clusters), or set launch.launcher: local");
        }
        if (resume != null && resume.step() >= job.train().steps()) {
            Path run = RunDirectory.findRunRoot(resumeArgument);
            log.println("run " + run + " is complete: " + resume.dir() + " is at step " + resume.step()
                    + " of train.steps " + job.train().steps() + "; nothing to do (to train further, set"
                    + " train.steps above " + resume.step() + ")");
            return new TrainResult(run, Optional.empty(), Optional.of(resume.dir()));
        }
        TrainAction training = action;
        if (action == TrainAction.DEFAULT && job.launch().launcher() == LauncherKind.SPARK) {
            training = new ClusterTraining(environment(LauncherKind.SPARK).orElseThrow(() -> new UserInputException(
                    "launch.launcher: spark runs the workers as Spark tasks, so the job must be submitted to Spark:"
                            + " use deploy/spark/tessera-submit (or SparkLaunch.training(spark) from Java)")));
        }
        RunDirectory directory = resume != null
                ? RunDirectory.resume(resumeArgument, out)
                : RunDirectory.create(out != null ? out : job.outDir().orElse(null));
        JobConfig placed = job.withOut(directory.root().toString());
        directory.writeConfig(placed);
        sweepHostLeftovers();
        RunSummary summary = training.run(new TrainRequest(placed, directory, resume == null ? null : resume.dir(),
                listener, log));
        return new TrainResult(directory.root(), Optional.of(summary),
                Checkpoint.latest(directory.root(), System.err::println));
    }

    /** The launchers of the environment this JVM runs in for {@code kind} ({@link EnvironmentLaunchers}), if any. */
    private static Optional<Function<JobConfig, Launcher>> environment(LauncherKind kind) {
        try {
            for (EnvironmentLaunchers found : ServiceLoader.load(EnvironmentLaunchers.class)) {
                if (found.kind() == kind) {
                    return found.find();
                }
            }
        } catch (ServiceConfigurationError | LinkageError e) { // Spark's classes are not on this class path
            return Optional.empty();
        }
        return Optional.empty();
    }

    /** What killed jobs left on this host (Aeron directories, worker logs), once their owners are gone. */
    private static void sweepHostLeftovers() {
        MediaDriverHost.sweepStale(MediaDriverHost.baseDirectory());
        ChildJvms.sweepStale(Path.of(System.getProperty("java.io.tmpdir")));
    }

    /** Collects the job's layers and the run's options; {@link #build} resolves and checks them once. */
    public static final class Builder {

        /** Names a cluster file that a builder with no launch of its own trains on ({@link #onCluster(Path)}). */
        public static final String CLUSTER_ENV = "TESSERA_CLUSTER";

        private JobConfig base = JobConfig.defaults();
        private final List<Path> configFiles = new ArrayList<>();
        private final List<ConfigOverride> overrides = new ArrayList<>();
        private final List<TrainingListener> listeners = new ArrayList<>();
        private Path out;
        private Path resume;
        private PrintStream log = System.out;
        private TrainAction action = TrainAction.DEFAULT;
        private ClusterFile cluster; // onCluster: its job layers and launch keys; else null

        private Builder() {
        }

        /** Starts from this typed spec instead of the defaults (e.g. one read with {@code JobConfigLoader}). */
        public Builder job(JobConfig job) {
            base = Objects.requireNonNull(job, "job");
            return this;
        }

        /** A YAML job file, layered over what came before (later files win, key by key). */
        public Builder config(Path yamlFile) {
            configFiles.add(Objects.requireNonNull(yamlFile, "yamlFile"));
            return this;
        }

        /**
         * Sets one key as a YAML file would ({@code "optimizer.lr"}, {@code 3e-4}). Enum constants are accepted
         * for enum keys, and null where the YAML allows null.
         */
        public Builder set(String key, Object value) {
            overrides.add(ConfigOverride.of(Objects.requireNonNull(key, "key"), value));
            return this;
        }

        /** One key set as a file or flag set it: errors name {@code override.origin()}. */
        public Builder set(ConfigOverride override) {
            overrides.add(Objects.requireNonNull(override, "override"));
            return this;
        }

        /** A {@code --set key=value} flag, the value read as YAML reads a scalar. */
        public Builder set(String keyEqualsValue) {
            overrides.add(ConfigOverride.parse(keyEqualsValue));
            return this;
        }

        /** The run directory; it must not exist or be empty. Default: the job's {@code out}, else runs/<time>. */
        public Builder out(Path runDirectory) {
            out = runDirectory;
            return this;
        }

        /**
         * Continues an earlier run from a run directory (its newest complete checkpoint) or one checkpoint. Its
         * stored config.yaml becomes a layer under the config files and sets, and output goes back into that run
         * unless {@link #out} names another directory.
         */
        public Builder resume(Path runOrCheckpoint) {
            resume = runOrCheckpoint;
            return this;
        }

        /** Called on every step, evaluation and checkpoint (rank 0's, for a run on worker processes). */
        public Builder listener(TrainingListener listener) {
            listeners.add(Objects.requireNonNull(listener, "listener"));
            return this;
        }

        /** Where the run's lines go (data, model, progress, done). Default: standard output. */
        public Builder log(PrintStream stream) {
            log = Objects.requireNonNull(stream, "stream");
            return this;
        }

        /**
         * How the job trains once its run directory exists. Default {@link TrainAction#DEFAULT}: in this process
         * for a mesh of one, else on worker processes of this host.
         */
        public Builder trainWith(TrainAction trainAction) {
            action = Objects.requireNonNull(trainAction, "trainAction");
            return this;
        }

        /**
         * Trains on the hosts of a cluster file ({@code deploy/clusters/*.yaml}), as {@code tessera launch} does:
         * the workers over ssh (or here, for a local host), their lines prefixed with rank and host on
         * {@code workerLogs}. The file's {@code job.config} and {@code job.set} come before this builder's layers,
         * its launch keys ({@code launch.launcher: cluster}, the coordinator's address, the ports) after them.
         */
        public Builder onCluster(Path clusterFile, PrintStream workerLogs) {
            cluster = ClusterFile.load(clusterFile);
            return trainWith(new ClusterTraining(cluster.launchers(workerLogs)));
        }

        /**
         * {@link #onCluster(Path, PrintStream)} with the workers' lines on standard error. A program that names no
         * launch of its own also trains on a cluster file's hosts when the environment variable
         * {@value #CLUSTER_ENV} names the file, so the same program runs on this host or on a cluster unchanged.
         */
        public Builder onCluster(Path clusterFile) {
            return onCluster(clusterFile, System.err);
        }

        /**
         * Resolves the layers into one job and checks it, and verifies the checkpoint to resume; bad input throws
         * a {@link dev.tessera.comm.UserInputException} that names the key, file or flag.
         */
        public Trainer build() {
            String clusterFromEnvironment = System.getenv(CLUSTER_ENV);
            if (cluster == null && action == TrainAction.DEFAULT && clusterFromEnvironment != null
                    && !clusterFromEnvironment.isBlank()) {
                onCluster(Path.of(clusterFromEnvironment));
            }
            List<Path> layers = new ArrayList<>();
            Checkpoint from = null;
            if (resume != null) {
                layers.add(RunDirectory.findRunRoot(resume).resolve(RunDirectory.CONFIG));
                from = Checkpoint.open(resume, System.err::println);
            }
            List<ConfigOverride> sets = new ArrayList<>();
            if (cluster != null) {
                cluster.jobConfig().ifPresent(layers::add);
                sets.addAll(cluster.jobSets());
            }
            layers.addAll(configFiles);
            sets.addAll(overrides);
            if (cluster != null) {
                sets.addAll(cluster.launchSets());
            }
            JobConfig job = JobConfigLoader.load(base, layers, sets);
            if (cluster != null) {
                cluster.requireFits(job);
            }
            return new Trainer(this, job, from);
        }
    }
}
