package dev.tessera.coordinator.run;

import dev.tessera.worker.blas.BlasKernel;
import dev.tessera.worker.data.SyntheticCorpus;
import dev.tessera.worker.data.TokenSource;
import dev.tessera.worker.train.TrainingLoop;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalDouble;

/**
 * What summary.json records about a finished run. Optional values are written as null when unknown:
 * {@code evalLoss} when evaluation is off, the entropies when the data source cannot compute them.
 *
 * @param entropyFloor   exact per-token entropy of the source (nats), the lowest loss any model can reach
 * @param unigramEntropy entropy of the token frequencies (nats), the loss of a model that ignores context
 * @param stateBytes     bytes of optimizer state this process (rank 0) held ({@code Optimizer.stateBytes()})
 * @param paramBytes     peak resident bytes of rank 0's flat parameter buffer over its first steps
 *                       ({@code MemoryProbe}); -1 when not measured
 * @param gradBytes      the same for the flat gradient buffer
 * @param peakRssBytes   the peak resident memory (VmHWM) of the fullest process that trained; -1 when not known
 * @param blas           the OpenBLAS kernel this process ran and who chose it (the workers choose the same way);
 *                       null when not known
 * @param config         the full resolved job config ({@code JobConfig.toMap()})
 * @param restarts       how often the job was relaunched after a failure ({@code restart.max_restarts});
 *                       {@code steps}, {@code tokens} and {@code wallSeconds} count the whole job, all attempts
 */
public record RunSummary(long steps, long tokens, double finalLoss, OptionalDouble evalLoss,
                         OptionalDouble entropyFloor, OptionalDouble unigramEntropy, double tokensPerSecond,
                         double wallSeconds, long params, long stateBytes, long paramBytes, long gradBytes,
                         long peakRssBytes,
                         BlasKernel blas, Map<String, Object> config, int restarts) {

    /** A summary without measured parameter and gradient memory or the BLAS kernel. */
    public RunSummary(long steps, long tokens, double finalLoss, OptionalDouble evalLoss, OptionalDouble entropyFloor,
                      OptionalDouble unigramEntropy, double tokensPerSecond, double wallSeconds, long params,
                      long stateBytes, Map<String, Object> config) {
        this(steps, tokens, finalLoss, evalLoss, entropyFloor, unigramEntropy, tokensPerSecond, wallSeconds, params,
                stateBytes, -1, -1, -1, null, config, 0);
    }

    /** The summary of a training loop's result on {@code data}. */
    public static RunSummary of(TrainingLoop.Result result, TokenSource data, double wallSeconds, long params,
                                long paramBytes, long gradBytes, long peakRssBytes, long stateBytes, BlasKernel blas,
                                Map<String, Object> config) {
        OptionalDouble unigram = data instanceof SyntheticCorpus corpus
                ? OptionalDouble.of(corpus.unigramEntropy()) : OptionalDouble.empty();
        return new RunSummary(result.steps(), result.tokens(), result.finalLoss(),
                Double.isNaN(result.evalLoss()) ? OptionalDouble.empty() : OptionalDouble.of(result.evalLoss()),
                data.entropyFloor(), unigram, result.tokensPerSecond(), wallSeconds, params, stateBytes, paramBytes,
                gradBytes, peakRssBytes, blas, config, 0);
    }

    /**
     * This summary of a job's last attempt as one of the whole job: after {@code restarts} relaunches it made
     * {@code steps} steps of progress ({@code tokens} tokens), each counted once however often it was trained.
     */
    public RunSummary forJob(long steps, long tokens, int restarts) {
        return new RunSummary(steps, tokens, finalLoss, evalLoss, entropyFloor, unigramEntropy, tokensPerSecond,
                wallSeconds, params, stateBytes, paramBytes, gradBytes, peakRssBytes, blas, config, restarts);
    }

    /** The last line a run prints: losses against the floor, throughput, where the summary is. */
    public String doneLine(Path summaryFile) {
        String eval = evalLoss.isPresent() ? String.format(Locale.ROOT, ", eval loss %.4f", evalLoss.getAsDouble()) : "";
        String floor = entropyFloor.isPresent() && evalLoss.isPresent()
                ? String.format(Locale.ROOT, " (entropy floor %.4f, ratio %.3f)", entropyFloor.getAsDouble(),
                        evalLoss.getAsDouble() / entropyFloor.getAsDouble()) : "";
        return String.format(Locale.ROOT, "done: %d steps, final loss %.4f%s%s, %.0f tokens/s; %s", steps, finalLoss,
                eval, floor, tokensPerSecond, summaryFile);
    }
}
