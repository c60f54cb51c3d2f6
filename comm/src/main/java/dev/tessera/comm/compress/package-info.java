/**
 * Gradient compression (ALGORITHMS.md sections 4 and 5). Encoders turn one layer's float32 gradient into the bytes
 * that cross the wire ({@link dev.tessera.comm.compress.Encoder}: Top-K, QSGD, FedZip), with error feedback;
 * PowerSGD's low-rank factors; L-GreCo's solver, schedule and per-layer choice in training. Three
 * {@link dev.tessera.comm.compress.BucketReduction}s sum one gradient bucket over a process group with them: a
 * gather of encodings ({@code GatheredReduction}: Top-K, FedZip), a reduce-scatter and all-gather of encoded chunks
 * ({@code ScatteredReduction}: QSGD) and PowerSGD's two all-reduces ({@code LowRankReduction}).
 */
package dev.tessera.comm.compress;
