package dev.tessera.optimizers;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntConsumer;

/**
 * A ZeRO group of {@code world} ranks as threads of this JVM (test fake of the all-reduce): every rank's
 * {@link ShardReducer} posts its vector, waits for the others behind a {@link CyclicBarrier}, and takes the
 * elementwise sum in rank order {@code ((v0 + v1) + v2) + ...}, the same on every rank. It also counts calls.
 */
final class InProcessGroup {

    private final int world;
    private final double[][] posted;
    private final int[] calls;
    private final CyclicBarrier barrier;

    InProcessGroup(int world) {
        this.world = world;
        this.posted = new double[world][];
        this.calls = new int[world];
        this.barrier = new CyclicBarrier(world);
    }

    ShardReducer rank(int k) {
        return (values, length) -> {
            calls[k]++;
            posted[k] = Arrays.copyOf(values, length);
            await(); // everyone has posted
            for (int i = 0; i < length; i++) {
                double sum = posted[0][i];
                for (int r = 1; r < world; r++) {
                    if (posted[r].length != length) {
                        throw new IllegalStateException("rank " + r + " reduced " + posted[r].length
                                + " values, rank " + k + " " + length);
                    }
                    sum += posted[r][i];
                }
                values[i] = sum;
            }
            await(); // everyone has read before anyone posts again
        };
    }

    /** Reducer calls rank {@code k} made. */
    int calls(int k) {
        return calls[k];
    }

    private void await() {
        try {
            barrier.await(60, TimeUnit.SECONDS);
        } catch (InterruptedException | BrokenBarrierException | TimeoutException e) {
            throw new IllegalStateException("a rank did not reach the reduction", e);
        }
    }

    /** Runs {@code body(k)} for every rank on its own thread and rethrows the first failure. */
    static void run(int world, IntConsumer body) {
        List<Thread> threads = new ArrayList<>();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        for (int k = 0; k < world; k++) {
            int rank = k;
            Thread t = new Thread(() -> {
                try {
                    body.accept(rank);
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            }, "rank-" + k);
            threads.add(t);
            t.start();
        }
        for (Thread t : threads) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
        if (failure.get() != null) {
            throw new AssertionError("rank failed", failure.get());
        }
    }
}
