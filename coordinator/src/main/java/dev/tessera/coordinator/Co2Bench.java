package dev.tessera.coordinator;

import dev.tessera.coordinator.launch.NamespaceHosts;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code tessera bench co2} (issue 19): the dense preset on the embedded corpus, two workers on two network-namespace
 * hosts whose links run at {@code rate} ({@link NamespaceHosts}), synchronous data parallelism and CO2 at each
 * {@code tau}, every row the same steps, so the same tokens. Per row: tokens/s over the timed steps (their tokens
 * over their summed step time, not a median: a CO2 step that ends a round waits, the others do not), the fraction
 * of that step time spent waiting on communication (synchronous: for gradients after backward; CO2: for the
 * previous round's parameter average, which {@code Co2Step} reports as the step's comm wait), and the final eval
 * loss. CO2's rows may send their outer deltas compressed ({@code compression}); the synchronous row, the baseline,
 * never compresses.
 */
public final class Co2Bench {

    /** {@code tau} null: synchronous data parallelism. */
    public record Result(String mode, Integer tau, String compression, String rate, double tokensPerSecond,
                         double blockedFraction, double finalEvalLoss) {

        public String json() {
            return String.format(Locale.ROOT, "{\"mode\":\"%s\",\"tau\":%s,\"compression\":\"%s\",\"rate\":\"%s\","
                            + "\"tokens_per_s\":%.1f,\"blocked_fraction\":%.4f,\"final_eval_loss\":%.4f}", mode,
                    tau == null ? "null" : tau.toString(), compression, rate, tokensPerSecond, blockedFraction,
                    finalEvalLoss);
        }

        public String describe() {
            String what = tau == null ? mode : mode + " tau " + tau
                    + (compression.equals("none") ? "" : " " + compression);
            return String.format(Locale.ROOT, "%-10s at %s: %.0f tokens/s, %.1f%% of step time waiting on"
                            + " communication, eval loss %.4f", what, rate, tokensPerSecond, 100 * blockedFraction,
                    finalEvalLoss);
        }
    }

    private Co2Bench() {
    }

    /**
     * Trains {@code warmup + steps} steps on fresh hosts at {@code rate} ("none": unlimited): synchronous data
     * parallelism when {@code tau} is null, else CO2 with {@code co2.tau=tau}. Its rounds end at the multiples of
     * {@code tau} and at the last step, which flushes the last average: when {@code tau} does not divide
     * {@code warmup + steps} the last round is shorter, and the warm-up steps lie inside the first round.
     * {@code extra} ({@code key=value}) apply after these, to every row alike; then, for CO2 only,
     * {@code compression} ({@code compression.method}) for the outer deltas.
     */
    public static Result run(Integer tau, String compression, String rate, int warmup, int steps,
                             List<String> extra) throws Exception {
        List<String> sets = new ArrayList<>(tau == null ? List.of("co2.enabled=false")
                : List.of("co2.enabled=true", "co2.tau=" + tau));
        sets.addAll(extra);
        String method = tau == null ? "none" : compression;
        sets.add("compression.method=" + method);
        NamespaceBenchRun.Measured m = NamespaceBenchRun.run("tessera-bench-co2-", rate, warmup, steps, sets);
        return new Result(tau == null ? "sync" : "co2", tau, method, rate, m.overallTokensPerSecond(),
                m.commWaitFraction(), m.finalEvalLoss());
    }
}
