package dev.tessera.coordinator.cli;

import dev.tessera.comm.compress.CompressionMethod;
import dev.tessera.coordinator.Co2Bench;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code tessera bench co2}: synchronous data parallelism and CO2 at each tau on two network-namespace hosts joined by
 * a link of each rate, the same steps (so the same tokens) for each, one JSON object per line (or a line of text).
 */
@Command(name = "co2", mixinStandardHelpOptions = true,
        description = "Train the dense preset on two hosts (network namespaces, needs root) over a rate-limited link"
                + " with synchronous data parallelism and with CO2 at each tau; report speed, blocked time and loss.")
public final class BenchCo2Command implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--rate", split = ",", paramLabel = "100mbit|1gbit|none", defaultValue = "100mbit",
            description = "Link rates, as tc writes them; none: unlimited (default: ${DEFAULT-VALUE}).")
    List<String> rates;

    @Option(names = "--tau", split = ",", paramLabel = "N[,N...]", defaultValue = "1,3,8",
            description = "CO2's local steps per round, one CO2 row each (default: ${DEFAULT-VALUE}).")
    List<Integer> taus;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "60",
            description = "Timed steps after 2 warm-up steps, the same for every row (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--set", paramLabel = "KEY=VALUE",
            description = "A job key for every row, after the bench's own (e.g. co2.outer_momentum=0.2,"
                    + " optimizer.warmup_steps=30). Repeatable.")
    List<String> sets = List.of();

    @Option(names = "--compression", paramLabel = "METHOD", defaultValue = "none",
            description = "compression.method of CO2's outer deltas (topk, qsgd, powersgd, fedzip; its other keys by"
                    + " --set); the synchronous row is never compressed (default: ${DEFAULT-VALUE}).")
    String compression;

    @Option(names = "--json", description = "One JSON object per line instead of lines of text.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        if (steps < 1) {
            throw new ParameterException(spec.commandLine(), "--steps must be >= 1 (got " + steps + ")");
        }
        for (int tau : taus) {
            if (tau < 1) {
                throw new ParameterException(spec.commandLine(), "--tau must be >= 1 (got " + tau + ")");
            }
        }
        List<String> methods = Arrays.stream(CompressionMethod.values()).map(m -> m.name().toLowerCase(Locale.ROOT))
                .toList();
        if (!methods.contains(compression)) {
            throw new ParameterException(spec.commandLine(), "--compression '" + compression + "': one of "
                    + String.join(", ", methods));
        }
        NamespaceBenchChecks.require(spec, rates, "bench co2");
        for (String rate : rates) {
            print(Co2Bench.run(null, compression, rate, 2, steps, sets));
            for (int tau : taus) {
                print(Co2Bench.run(tau, compression, rate, 2, steps, sets));
            }
        }
        return 0;
    }

    private void print(Co2Bench.Result r) {
        System.out.println(json ? r.json() : r.describe());
        System.out.flush();
    }
}
