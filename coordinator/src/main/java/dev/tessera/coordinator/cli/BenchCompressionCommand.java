package dev.tessera.coordinator.cli;

import dev.tessera.coordinator.CompressionBench;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code tessera bench compression}: gradient-compression methods on two network-namespace hosts joined by a link of
 * each rate, the same steps for each, one JSON object per line (or a line of text).
 */
@Command(name = "compression", mixinStandardHelpOptions = true,
        description = "Train the dense preset on two hosts (network namespaces, needs root) over a rate-limited link"
                + " with each gradient-compression method; report bytes sent, loss and speed.")
public final class BenchCompressionCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--rate", split = ",", paramLabel = "100mbit|1gbit|none", defaultValue = "100mbit",
            description = "Link rates, as tc writes them; none: unlimited (default: ${DEFAULT-VALUE}).")
    List<String> rates;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "30",
            description = "Timed steps after 2 warm-up steps, the same for every method (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--methods", split = ",", paramLabel = "M[,M...]", defaultValue = "none,topk,topk-lgreco,powersgd,"
            + "powersgd-lgreco,qsgd,qsgd-lgreco,fedzip", description = "Methods to run, of none, topk, topk-lgreco,"
            + " powersgd, powersgd-lgreco, qsgd, qsgd-lgreco, fedzip (default: ${DEFAULT-VALUE}).")
    List<String> names;

    @Option(names = "--set", paramLabel = "KEY=VALUE",
            description = "A job key for every method, after the method's own (e.g. compression.lgreco_slack=-0.5,"
                    + " train.seed=7). Repeatable.")
    List<String> sets = List.of();

    @Option(names = "--json", description = "One JSON object per line instead of lines of text.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        if (steps < 1) {
            throw new ParameterException(spec.commandLine(), "--steps must be >= 1 (got " + steps + ")");
        }
        List<CompressionBench.Method> chosen = new ArrayList<>();
        List<CompressionBench.Method> all = CompressionBench.methods(steps);
        for (String name : names) {
            chosen.add(all.stream().filter(m -> m.name().equals(name)).findFirst().orElseThrow(() ->
                    new ParameterException(spec.commandLine(), "--methods: no method '" + name + "'; choose from "
                            + String.join(", ", all.stream().map(CompressionBench.Method::name).toList()))));
        }
        NamespaceBenchChecks.require(spec, rates, "bench compression");
        for (String rate : rates) {
            double uncompressed = Double.NaN;
            for (CompressionBench.Method method : chosen) {
                CompressionBench.Result r = CompressionBench.run(method, rate, 2, steps, uncompressed, sets);
                if (method.name().equals("none")) {
                    uncompressed = r.wireBytes();
                    r = new CompressionBench.Result(r.method(), r.rate(), r.wireBytes(), 1.0, r.finalEvalLoss(),
                            r.tokensPerSecond(), r.commWaitFraction());
                }
                System.out.println(json ? r.json() : r.describe());
                System.out.flush();
            }
        }
        return 0;
    }
}
