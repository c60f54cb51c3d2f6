package dev.tessera.coordinator.cli;

import dev.tessera.coordinator.TrainAction;
import dev.tessera.coordinator.Trainer;
import dev.tessera.coordinator.config.JobConfigLoader;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code tessera train}: the command-line view of {@link Trainer}. Each option maps onto one builder call, so
 * the CLI and the Java API resolve, check and run a job the same way.
 */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Train a model. The job config starts from built-in defaults, then --config, then each --set.",
                "On --resume, the resumed run's config.yaml comes first and output goes back into that run",
                "unless --out is given."})
public final class TrainCommand implements Callable<Integer> {

    private final TrainAction action;
    private final PrintStream log;

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

    /** @param action how the job trains ({@link TrainAction#DEFAULT}); @param log where the run's lines go */
    TrainCommand(TrainAction action, PrintStream log) {
        this.action = action;
        this.log = log;
    }

    @Override
    public Integer call() throws Exception {
        Trainer.Builder builder = Trainer.builder().trainWith(action).log(log).out(out).resume(resume);
        if (config != null) {
            builder.config(config);
        }
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
