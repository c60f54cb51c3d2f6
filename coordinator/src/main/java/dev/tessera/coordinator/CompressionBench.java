package dev.tessera.coordinator;

import dev.tessera.coordinator.launch.NamespaceHosts;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code tessera bench compression}: the dense preset on the embedded corpus, two workers on two network-namespace
 * hosts whose links run at {@code rate} ({@link NamespaceHosts}), the same steps for each gradient-compression
 * method. Per method: the data bytes rank 0 handed to the transport over the timed steps (counted at the transport),
 * their ratio to the uncompressed run's, the final eval loss, the median tokens/s and the fraction of step time
 * spent waiting for gradients after backward.
 */
public final class CompressionBench {

    /** A method as the bench names it, and the {@code compression.*} settings that make it. */
    public record Method(String name, List<String> sets) {
    }

    /**
     * The methods, in the order the issue lists them. L-GreCo re-chooses four times a run and adds up each layer's
     * error norm, not its square: under the square one layer with large gradients (the head) paid for 2-bit QSGD or
     * rank 1 on nearly every other, which cost loss at every seed tried (docs/PERFORMANCE.md, issue 18).
     */
    public static List<Method> methods(int steps) {
        String period = "compression.lgreco_period=" + Math.max(1, steps / 4);
        String norm = "compression.lgreco_error=norm";
        return List.of(
                new Method("none", List.of("compression.method=none")),
                new Method("topk", List.of("compression.method=topk", "compression.topk_density=0.01")),
                new Method("topk-lgreco", List.of("compression.method=topk", "compression.topk_density=0.01",
                        "compression.lgreco=true", period, norm)),
                new Method("powersgd", List.of("compression.method=powersgd", "compression.powersgd_rank=4")),
                new Method("powersgd-lgreco", List.of("compression.method=powersgd", "compression.powersgd_rank=4",
                        "compression.lgreco=true", period, norm)),
                new Method("qsgd", List.of("compression.method=qsgd", "compression.qsgd_bits=4")),
                new Method("qsgd-lgreco", List.of("compression.method=qsgd", "compression.qsgd_bits=4",
                        "compression.lgreco=true", period, norm)),
                new Method("fedzip", List.of("compression.method=fedzip", "compression.fedzip_keep=0.005",
                        "compression.fedzip_encoding=gap", "compression.fedzip_error_feedback=true")));
    }

    public record Result(String method, String rate, long wireBytes, double ratio, double finalEvalLoss,
                         double tokensPerSecond, double commWaitFraction) {

        public String json() {
            return String.format(Locale.ROOT, "{\"method\":\"%s\",\"rate\":\"%s\",\"wire_bytes\":%d,\"ratio\":%s,"
                            + "\"final_eval_loss\":%.4f,\"tokens_per_s\":%.1f,\"comm_wait_fraction\":%.4f}", method,
                    rate, wireBytes, Double.isNaN(ratio) ? "null" : String.format(Locale.ROOT, "%.2f", ratio),
                    finalEvalLoss, tokensPerSecond, commWaitFraction);
        }

        public String describe() {
            return String.format(Locale.ROOT, "%-12s at %s: %,d bytes sent by rank 0 (%s), eval loss %.4f, %.0f"
                            + " tokens/s, %.1f%% of step time waiting for gradients", method, rate, wireBytes,
                    Double.isNaN(ratio) ? "no uncompressed run to compare" : String.format(Locale.ROOT,
                            "%.1fx fewer than uncompressed", ratio), finalEvalLoss, tokensPerSecond,
                    100 * commWaitFraction);
        }
    }

    private CompressionBench() {
    }

    /**
     * Runs {@code method} for {@code warmup + steps} steps on fresh hosts at {@code rate} ("none": unlimited);
     * {@code uncompressedBytes} (NaN: unknown) is the uncompressed run's wire bytes for the ratio. {@code extra}
     * ({@code key=value}) apply after the method's own settings.
     */
    public static Result run(Method method, String rate, int warmup, int steps, double uncompressedBytes,
                             List<String> extra) throws Exception {
        List<String> sets = new ArrayList<>(List.of("compression.min_elements=10000"));
        sets.addAll(method.sets());
        sets.addAll(extra);
        NamespaceBenchRun.Measured m = NamespaceBenchRun.run("tessera-bench-compression-", rate, warmup, steps, sets);
        return new Result(method.name(), rate, m.wireBytes(), uncompressedBytes / m.wireBytes(), m.finalEvalLoss(),
                m.medianTokensPerSecond(), m.commWaitFraction());
    }
}
