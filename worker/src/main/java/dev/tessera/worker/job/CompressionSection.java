package dev.tessera.worker.job;

/**
 * {@code compression:} gradient compression for data parallelism. {@code method: none} (the default) sends whole
 * gradients. Layers with fewer than {@code min_elements} elements, and vectors, always travel whole. With
 * {@code lgreco: true} each layer's parameter is re-chosen from its family's candidates every {@code lgreco_period}
 * steps after {@code lgreco_warmup_steps} (ALGORITHMS.md 4), at the same total error as the uniform setting; the
 * per-method keys are then the uniform baseline. {@code fedzip_error_feedback} adds the residual accumulator the
 * FedZip paper does not have; the other methods always feed their error back.
 */
public record CompressionSection(CompressionMethod method, double topkDensity, int qsgdBits, int qsgdBucket,
                                 int powersgdRank, double fedzipKeep, FedZipEncoding fedzipEncoding,
                                 boolean fedzipErrorFeedback, boolean lgreco, int lgrecoWarmupSteps,
                                 int lgrecoPeriod, int lgrecoResolution, int minElements) {

    public static CompressionSection defaults() {
        return new CompressionSection(CompressionMethod.NONE, 0.01, 4, 128, 4, 0.2, FedZipEncoding.GAP, false, false,
                0, 1000, 1000, 10_000);
    }

    public boolean enabled() {
        return method != CompressionMethod.NONE;
    }
}
