package dev.tessera.worker.model;

import static org.junit.jupiter.api.Assertions.fail;

import java.lang.management.ManagementFactory;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Once C2 has compiled the fused attention, a forward and backward allocate nothing: no kernel leaves a
 * {@code FloatVector} boxed. The shape is one where it did: at 2,048 tokens the dK/dV kernel's first calls run
 * their loop long enough to be compiled on stack replacement, which left the profile of its call to a store
 * helper cold; C2 did not inline that call and boxed the accumulators at every fma (589 MB per backward of one
 * head, 2.5x its time). The kernel only becomes allocation-free once compiled, so the test waits for that.
 */
class FusedAttentionAllocationTest {
    private static final int T = 2048;
    private static final int D = 32;
    private static final int MAX_ITERATIONS = 300;
    private static final long CLEAN_BYTES = 64 * 1024; // TLAB refills and the like, not a vector per fma

    @Test
    void compiledKernelsAllocateNothing() {
        int[] qPos = new int[T];
        for (int i = 0; i < T; i++) {
            qPos[i] = i;
        }
        FusedAttention fa = new FusedAttention(qPos, T, D, 0, 1, Activations.own());
        SplittableRandom rng = new SplittableRandom(7);
        Mem[] m = new Mem[7]; // q, k, v, y/dy, dq, dk, dv
        for (int i = 0; i < m.length; i++) {
            m[i] = new Mem(Nd4j.create(DataType.FLOAT, T, D));
            for (int j = 0; j < T * D; j++) {
                m[i].set(j, (float) rng.nextGaussian());
            }
        }
        float[] p = new float[T * FusedAttention.paddedKeys(T)];
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long id = Thread.currentThread().getId();
        long last = -1;
        for (int it = 0; it < MAX_ITERATIONS; it++) {
            long before = threads.getThreadAllocatedBytes(id);
            fa.forward(0, m[0], m[1], m[2], m[3], p);
            fa.backward(0, m[0], m[1], m[2], m[3], m[4], m[5], m[6], p);
            last = threads.getThreadAllocatedBytes(id) - before;
            if (last < CLEAN_BYTES) {
                return;
            }
        }
        fail("a forward and backward of " + T + " tokens still allocated " + last + " bytes after "
                + MAX_ITERATIONS + " iterations: a kernel boxes vectors");
    }
}
