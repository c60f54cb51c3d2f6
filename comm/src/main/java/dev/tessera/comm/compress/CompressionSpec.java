package dev.tessera.comm.compress;

/**
 * {@code compression:} gradient compression for data parallelism, as the job spec gives it (its YAML keys are the
 * components in snake_case). {@code method: none} (the default) sends whole gradients. Layers with fewer than
 * {@code min_elements} elements, and vectors, always travel whole. With {@code lgreco: true} each layer's parameter
 * is re-chosen from its family's candidates every {@code lgreco_period} steps after {@code lgreco_warmup_steps}
 * (ALGORITHMS.md 4), at the same total error as the uniform setting, or at {@code 1 + lgreco_slack} times it (a
 * negative slack buys a smaller error with some of the bytes saved), each layer's error measured as
 * {@code lgreco_error} ({@link LGreCoError}); the per-method keys are then the uniform baseline.
 * {@code fedzip_error_feedback} adds the residual accumulator the FedZip paper does not have; the other methods always
 * feed their error back. It lives here, not with the job's other sections, because the data-parallel
 * code that runs it must not depend on the job package.
 */
public record CompressionSpec(CompressionMethod method, double topkDensity, int qsgdBits, int qsgdBucket,
                              int powersgdRank, double fedzipKeep, FedZip.Encoding fedzipEncoding,
                              boolean fedzipErrorFeedback, boolean lgreco, int lgrecoWarmupSteps,
                              int lgrecoPeriod, int lgrecoResolution, double lgrecoSlack,
                              LGreCoError lgrecoError, int minElements) {

    public static CompressionSpec defaults() {
        return new CompressionSpec(CompressionMethod.NONE, 0.01, 4, 128, 4, 0.2, FedZip.Encoding.GAP, false, false,
                0, 1000, 1000, 0, LGreCoError.SQUARED, 10_000);
    }

    public boolean enabled() {
        return method != CompressionMethod.NONE;
    }
}
