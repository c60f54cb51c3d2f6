package dev.tessera.coordinator.cli;

import dev.tessera.coordinator.Trainer;
import dev.tessera.coordinator.config.JobConfigLoader;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code tessera launch CLUSTER.yaml}: trains the cluster file's job on its hosts. The job resolves as in
 * {@code tessera train} (defaults, the file's job config, its {@code job.set}, then each {@code --set}), after which
 * the file's own launch keys apply; the workers start over ssh (or here, for a local host), their lines prefixed
 * with their rank and host.
 */
@Command(name = "launch", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Train on the hosts of a cluster file (deploy/clusters/*.yaml): the coordinator here, the",
                "workers over ssh (local processes for a local host), the distribution copied where it differs."})
public final class LaunchCommand implements Callable<Integer> {

    private final PrintStream log;
    private final PrintStream workerLogs;

    @Spec
    CommandSpec spec;

    @Parameters(paramLabel = "CLUSTER.yaml", description = "The cluster file: hosts, ports, JVM options and job.")
    Path clusterFile;

    @Option(names = "--set", paramLabel = "KEY=VALUE",
            description = "Override one job config key after the cluster file's job.set, e.g. --set train.steps=100.")
    List<String> sets = new ArrayList<>();

    @Option(names = "--out", paramLabel = "DIR",
            description = "Run directory (default: the job's out, else runs/<yyyyMMdd-HHmmss>). Workers write"
                    + " checkpoints into it on their own hosts: give a folder every host shares when they are on.")
    Path out;

    @Option(names = "--resume", paramLabel = "DIR", description = "Continue an earlier run (as tessera train).")
    Path resume;

    @Option(names = "--print-config", description = "Print the resolved job as YAML and exit without launching.")
    boolean printConfig;

    /** @param log where the run's lines go; @param workerLogs where the workers' prefixed lines go */
    LaunchCommand(PrintStream log, PrintStream workerLogs) {
        this.log = log;
        this.workerLogs = workerLogs;
    }

    @Override
    public Integer call() throws Exception {
        Trainer.Builder builder = Trainer.builder().log(log).resume(resume)
                .out(out == null ? null : out.toAbsolutePath()) // a remote worker's working folder is another
                .onCluster(clusterFile, workerLogs);
        sets.forEach(builder::set);
        Trainer trainer = builder.build();
        if (printConfig) {
            spec.commandLine().getOut().print(JobConfigLoader.toYaml(trainer.job()));
            spec.commandLine().getOut().flush();
            return 0;
        }
        trainer.fit();
        return 0;
    }
}
