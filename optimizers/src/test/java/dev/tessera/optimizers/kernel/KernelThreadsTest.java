package dev.tessera.optimizers.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class KernelThreadsTest {

    @Test
    void everyItemRunsOnceInFixedParts() {
        for (int n : new int[] {0, 1, 2, 3, 1000, 1001}) {
            AtomicIntegerArray hits = new AtomicIntegerArray(Math.max(1, n));
            int parts = Math.min(KernelThreads.THREADS, n);
            int[] partOf = new int[Math.max(1, n)];
            for (int rep = 0; rep < 50; rep++) {
                KernelThreads.forRange(n, (part, from, to) -> {
                    for (int i = from; i < to; i++) {
                        hits.incrementAndGet(i);
                        partOf[i] = part;
                    }
                });
            }
            for (int i = 0; i < n; i++) {
                assertEquals(50, hits.get(i));
                int want = 0;
                while (parts > 1 && (long) n * (want + 1) / parts <= i) {
                    want++;
                }
                assertEquals(want, partOf[i], "part of item " + i + " of " + n);
            }
        }
    }

    @Test
    void failuresReachTheCaller() {
        assertThrows(IllegalArgumentException.class, () -> KernelThreads.forRange(10, (part, from, to) -> {
            if (from > 0 || KernelThreads.THREADS == 1) {
                throw new IllegalArgumentException("boom");
            }
        }));
        int[] after = new int[4];
        KernelThreads.forRange(4, (part, from, to) -> {
            for (int i = from; i < to; i++) {
                after[i] = i;
            }
        });
        assertArrayEquals(new int[] {0, 1, 2, 3}, after);
    }
}
