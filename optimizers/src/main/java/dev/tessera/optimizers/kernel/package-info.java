/**
 * What the fused Java kernels share: {@link dev.tessera.optimizers.kernel.KernelThreads}, the fixed pool that
 * splits a kernel's range into parts, and {@link dev.tessera.optimizers.kernel.NativeMemory}, the one way to
 * address an array's native memory (64-bit offsets, per-tensor views, whole buffers walked in windows). They live
 * in optimizers, the lowest module with kernels (AdamW, the gradient norm), so the model's kernels, collectives
 * and checkpoints in worker use the same ones.
 */
package dev.tessera.optimizers.kernel;
