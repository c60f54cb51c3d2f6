/**
 * Gradient compression (ALGORITHMS.md sections 4 and 5): encoders that turn one layer's float32 gradient into the
 * bytes that cross the wire ({@link dev.tessera.comm.compress.Encoder}), error feedback, PowerSGD's low-rank
 * factors, FedZip's pipeline, and L-GreCo's per-layer choice. Pure logic: nothing here talks to a transport.
 */
package dev.tessera.comm.compress;
