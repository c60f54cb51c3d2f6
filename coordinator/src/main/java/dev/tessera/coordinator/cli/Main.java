package dev.tessera.coordinator.cli;

import dev.tessera.coordinator.TrainAction;
import dev.tessera.worker.blas.BlasKernel;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.util.concurrent.Callable;

/** The {@code tessera} command line. {@link #run} returns the exit code so tests need not exit the JVM. */
@Command(name = "tessera", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = "Distributed training of Llama/Mixtral-style language models on the JVM.",
        subcommands = {TrainCommand.class, LaunchCommand.class, ExportCommand.class, BenchCommand.class,
                CommandLine.HelpCommand.class})
public final class Main implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    public static void main(String... args) {
        BlasKernel.choose(); // before anything loads OpenBLAS, which reads its kernel only then
        System.exit(run(args));
    }

    public static int run(String... args) {
        return run(System.out, System.err, args);
    }

    /** Runs with the given streams; exit code 0 ok, 1 failure, 2 bad input (see {@link ExitCodes}). */
    public static int run(PrintStream out, PrintStream err, String... args) {
        return run(out, err, TrainAction.DEFAULT, BenchModelCommand.DEFAULT_ACTION, args);
    }

    /**
     * {@code tessera train ARGS} with {@code train} as how the job trains: the entry of other launch front ends
     * (spark-submit's {@code SparkTrain}), so that they take the same options and report errors the same way.
     */
    public static int train(TrainAction train, String... trainArgs) {
        String[] args = new String[trainArgs.length + 1];
        args[0] = "train";
        System.arraycopy(trainArgs, 0, args, 1, trainArgs.length);
        return run(System.out, System.err, train, BenchModelCommand.DEFAULT_ACTION, args);
    }

    /** As {@link #run(PrintStream, PrintStream, String...)}, with what {@code train} and {@code bench model} do. */
    static int run(PrintStream out, PrintStream err, TrainAction train, BenchModelAction benchModel,
                   String... args) {
        ErrorReporter reporter = new ErrorReporter(ErrorReporter.debugRequested());
        CommandLine cli = new CommandLine(new Main(), commands(out, err, train, benchModel))
                .setCaseInsensitiveEnumValuesAllowed(true)
                .setOut(writer(out))
                .setErr(writer(err))
                .setParameterExceptionHandler(reporter)
                .setExecutionExceptionHandler(reporter);
        return cli.execute(args);
    }

    @Override
    public Integer call() {
        throw new ParameterException(spec.commandLine(), "missing command; one of: "
                + String.join(", ", spec.subcommands().keySet()));
    }

    /** Builds the commands that take what they do at construction; picocli builds the rest. */
    private static CommandLine.IFactory commands(PrintStream out, PrintStream err, TrainAction train,
                                                BenchModelAction benchModel) {
        CommandLine.IFactory picocli = CommandLine.defaultFactory();
        return new CommandLine.IFactory() {
            @Override
            public <K> K create(Class<K> type) throws Exception {
                if (type == TrainCommand.class) {
                    return type.cast(new TrainCommand(train, out));
                } else if (type == LaunchCommand.class) {
                    return type.cast(new LaunchCommand(out, err));
                } else if (type == BenchModelCommand.class) {
                    return type.cast(new BenchModelCommand(benchModel));
                }
                return picocli.create(type);
            }
        };
    }

    private static PrintWriter writer(PrintStream stream) {
        return new PrintWriter(stream, true);
    }
}
