package dev.tessera.optimizers;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

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
public final class Parallel {
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

    private Parallel() {
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

    /** Runs {@code body} over [0, n) cut into THREADS contiguous parts; part 0 on the calling thread. */
    public static void forRange(int n, Body body) {
        int parts = Math.min(THREADS, n);
        if (parts <= 1) {
            if (n > 0) {
                body.run(0, 0, n);
            }
            return;
        }
        @SuppressWarnings("unchecked")
        Future<?>[] futures = new Future<?>[parts - 1];
        for (int p = 1; p < parts; p++) {
            int part = p;
            futures[p - 1] = POOL.submit(() -> body.run(part, bound(n, parts, part), bound(n, parts, part + 1)));
        }
        body.run(0, 0, bound(n, parts, 1));
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted waiting for a kernel thread", e);
            } catch (ExecutionException e) {
                Throwable c = e.getCause();
                if (c instanceof RuntimeException re) {
                    throw re;
                }
                if (c instanceof Error err) {
                    throw err;
                }
                throw new IllegalStateException(c);
            }
        }
    }

    private static int bound(int n, int parts, int p) {
        return (int) ((long) n * p / parts);
    }
}
