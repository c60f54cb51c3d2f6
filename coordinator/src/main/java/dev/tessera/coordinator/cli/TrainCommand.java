package dev.tessera.coordinator.cli;

import dev.tessera.coordinator.launch.ChildJvms;
import dev.tessera.comm.MediaDriverHost;
import dev.tessera.coordinator.ClusterTraining;
import dev.tessera.coordinator.LocalTraining;
import dev.tessera.coordinator.TrainAction;

import dev.tessera.coordinator.config.JobConfigLoader;
import dev.tessera.coordinator.run.RunDirectory;
import dev.tessera.worker.checkpoint.Checkpoint;
import dev.tessera.worker.job.JobConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Callable;

/** {@code tessera train}: resolve the job config, prepare the run directory, hand both to the train action. */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Train a model. The job config starts from built-in defaults, then --config, then each --set.",
                "On --resume, the resumed run's config.yaml comes first and output goes back into that run",
                "unless --out is given."})
public final class TrainCommand implements Callable<Integer> {

    /** A mesh of one rank trains in this process ({@link LocalTraining}); larger ones on worker processes. */
    public static final TrainAction DEFAULT_ACTION = (config, dir, resume) -> config.mesh().world() == 1
            ? new LocalTraining(System.out).run(config, dir, resume)
            : new ClusterTraining(System.out).run(config, dir, resume);

    private static volatile TrainAction action = DEFAULT_ACTION;

    @Spec
    CommandSpec spec;

    @Option(names = "--config", paramLabel = "FILE", description = "YAML job config.")
    Path config;

    @Option(names = "--set", paramLabel = "KEY=VALUE",
            description = "Override one config key (dotted path, YAML value), e.g. --set optimizer.lr=1e-3."
                    + " Repeatable; applied in order.")
    List<String> sets = new ArrayList<>();

    @Option(names = "--out", paramLabel = "DIR",
            description = "Run directory (default: the config's out, else runs/<yyyyMMdd-HHmmss>).")
    Path out;

    @Option(names = "--resume", paramLabel = "DIR",
            description = "Continue an earlier run: its directory or one of its checkpoints/step-N directories.")
    Path resume;

    @Option(names = "--print-config", description = "Print the resolved config as YAML and exit without training.")
    boolean printConfig;

    /** Installs what training means; the launcher wires this at startup. */
    public static void setAction(TrainAction trainAction) {
        action = Objects.requireNonNull(trainAction, "trainAction");
    }

    public static TrainAction action() {
        return action;
    }

    @Override
    public Integer call() throws Exception {
        JobConfig job = resolveConfig();
        if (printConfig) {
            spec.commandLine().getOut().print(JobConfigLoader.toYaml(job));
            spec.commandLine().getOut().flush();
            return 0;
        }
        Path checkpoint = null;
        if (resume != null) {
            Checkpoint from = Checkpoint.open(resume, spec.commandLine().getErr()::println);
            if (from.step() >= job.train().steps()) {
                spec.commandLine().getOut().println("run " + RunDirectory.findRunRoot(resume) + " is complete: "
                        + from.dir() + " is at step " + from.step() + " of train.steps " + job.train().steps()
                        + "; nothing to do (to train further, add --set train.steps=N with N > " + from.step() + ")");
                return 0;
            }
            checkpoint = from.dir();
        }
        RunDirectory directory = resume != null
                ? RunDirectory.resume(resume, out)
                : RunDirectory.create(out != null ? out : job.outDir().orElse(null));
        job = job.withOut(directory.root().toString());
        directory.writeConfig(job);
        sweepHostLeftovers();
        return action.run(job, directory, checkpoint);
    }

    /** What killed jobs left on this host (Aeron directories, worker logs), once their owners are gone. */
    private static void sweepHostLeftovers() {
        MediaDriverHost.sweepStale(MediaDriverHost.baseDirectory());
        ChildJvms.sweepStale(Path.of(System.getProperty("java.io.tmpdir")));
    }

    private JobConfig resolveConfig() {
        List<Path> layers = new ArrayList<>();
        if (resume != null) {
            layers.add(RunDirectory.findRunRoot(resume).resolve(RunDirectory.CONFIG));
        }
        if (config != null) {
            layers.add(config);
        }
        return JobConfigLoader.loadLayers(layers, sets);
    }
}
