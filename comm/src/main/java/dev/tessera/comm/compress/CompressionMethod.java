package dev.tessera.comm.compress;

/** {@code compression.method}: how data-parallel gradients cross the wire (ALGORITHMS.md sections 4 and 5). */
public enum CompressionMethod {
    /** Whole float32 gradients, all-reduced. */
    NONE,
    /** The largest-magnitude fraction {@code topk_density} of each layer, as (index, value) pairs, with error feedback. */
    TOPK,
    /** {@code qsgd_bits}-bit stochastic quantisation in buckets of {@code qsgd_bucket}, with error feedback. */
    QSGD,
    /** Rank-{@code powersgd_rank} factors of each matrix, warm-started, with error feedback. */
    POWERSGD,
    /** Top-z, three k-means centroids and a lossless code ({@code fedzip_encoding}). */
    FEDZIP
}
