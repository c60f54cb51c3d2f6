package dev.tessera.coordinator.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.util.concurrent.Callable;

/**
 * {@code tessera bench}: a group of micro-benchmarks (model, comm, train, memory, checkpoint, seq, compression,
 * co2).
 */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks.",
        subcommands = {BenchModelCommand.class, BenchCommCommand.class, BenchTrainCommand.class,
                BenchMemoryCommand.class, BenchCheckpointCommand.class, BenchSeqCommand.class,
                BenchCompressionCommand.class, BenchCo2Command.class})
public final class BenchCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        throw new ParameterException(spec.commandLine(), "missing benchmark; one of: "
                + String.join(", ", spec.subcommands().keySet()));
    }
}
