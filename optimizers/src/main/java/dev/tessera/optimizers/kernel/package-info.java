/**
 * What the fused Java kernels share: {@link dev.tessera.optimizers.kernel.KernelThreads}, the fixed pool that
 * splits a kernel's range into parts. It lives in optimizers, the lowest module with kernels (AdamW, the
 * gradient norm), so the model's kernels in worker use the same threads.
 */
package dev.tessera.optimizers.kernel;
