package dev.tessera.optimizers.kernel;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Splits the fused Java kernels (the model's in the worker, AdamW and the grad norm here: this is the
 * lowest module that has kernels) over a fixed number of threads: {@code -Dtessera.kernel.threads}, else
 * {@code OMP_NUM_THREADS}, else the core count; 1 runs everything on the caller. Only the kernels between
 * gemms use it, so it runs while OpenBLAS's threads have no work, never alongside a gemm.
 *
 * <p>Determinism: a range is cut into {@link #THREADS} fixed contiguous parts that depend only on the range
 * length, and no kernel reduces across parts, so results are bit-identical whatever the timing. The kernels
 * also keep every reduction's order independent of the part count (fixed row groups or chunks, or one
 * part owning a whole sum), so any thread count gives the same bits.
 */
public final class KernelThreads {
    public static final int THREADS = Math.max(1, Integer.getInteger("tessera.kernel.threads", defaultThreads()));

    private static final ExecutorService POOL = THREADS == 1 ? null : Executors.newFixedThreadPool(THREADS - 1, r -> {
        Thread t = new Thread(r, "tessera-kernel");
        t.setDaemon(true);
        return t;
    });

    /** Work on items [from, to) as part {@code part} (0 <= part < THREADS; a part owns its scratch). */
    @FunctionalInterface
    public interface Body {
        void run(int part, int from, int to);
    }

    /** Work on elements [from, to) of a range that may exceed an int, as part {@code part}. */
    @FunctionalInterface
    public interface LongBody {
        void run(int part, long from, long to);
    }

    private KernelThreads() {
    }

    /** OMP_NUM_THREADS when set (ND4J's and OpenBLAS's count: workers sharing a host split cores alike). */
    private static int defaultThreads() {
        String omp = System.getenv("OMP_NUM_THREADS");
        if (omp != null) {
            try {
                return Integer.parseInt(omp.trim());
            } catch (NumberFormatException e) {
                // fall through: an unusable value means the default
            }
        }
        return Runtime.getRuntime().availableProcessors();
    }

    /**
     * Runs {@code body} over [0, n) cut into THREADS contiguous parts. Parts are claimed, not assigned: the
     * caller and the pool threads each take the next unclaimed part, so a helper that the OS has not
     * scheduled yet (a loaded machine) costs nothing, the caller just runs its part too. Which thread runs
     * a part never changes what the part computes.
     */
    public static void forRange(int n, Body body) {
        int parts = Math.min(THREADS, n);
        if (parts <= 1) {
            if (n > 0) {
                body.run(0, 0, n);
            }
            return;
        }
        AtomicInteger next = new AtomicInteger();
        CountDownLatch done = new CountDownLatch(parts);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Runnable claim = () -> {
            for (int p = next.getAndIncrement(); p < parts; p = next.getAndIncrement()) {
                try {
                    body.run(p, bound(n, parts, p), bound(n, parts, p + 1));
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                } finally {
                    done.countDown();
                }
            }
        };
        for (int h = 1; h < parts; h++) {
            POOL.execute(claim);
        }
        claim.run();
        try {
            done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted waiting for a kernel thread", e);
        }
        Throwable t = failure.get();
        if (t instanceof RuntimeException re) {
            throw re;
        }
        if (t instanceof Error err) {
            throw err;
        }
        if (t != null) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * {@link #forRange} over [0, n) for a range longer than an int (a flat buffer of several GiB): the same
     * contiguous parts, as longs.
     */
    public static void forLongRange(long n, LongBody body) {
        int parts = (int) Math.min(THREADS, n);
        if (parts <= 1) {
            if (n > 0) {
                body.run(0, 0, n);
            }
            return;
        }
        forRange(parts, (part, from, to) -> {
            for (int p = from; p < to; p++) {
                body.run(p, n * p / parts, n * (p + 1) / parts);
            }
        });
    }

    private static int bound(int n, int parts, int p) {
        return (int) ((long) n * p / parts);
    }
}
