/**
 * Parallelism, applied to a model from outside: the {@link dev.tessera.worker.parallel.Mesh}'s rank arithmetic,
 * the {@link dev.tessera.worker.parallel.DeviceMesh} with this rank's process groups, and
 * {@link dev.tessera.worker.parallel.Parallelize}, which installs the strategies (gradient all-reduce, ZeRO,
 * parameter fetch, K/V exchange, token dispatch) that implement the model package's interfaces. Also the memory
 * one rank needs, estimated before launch and measured while training.
 */
package dev.tessera.worker.parallel;
