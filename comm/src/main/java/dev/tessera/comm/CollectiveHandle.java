package dev.tessera.comm;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * An operation running in the background (on its group's async thread), so the caller can compute meanwhile.
 * The operation enforces its own deadline; {@link #await()} adds a grace period on top so it can never block
 * forever either.
 */
public final class CollectiveHandle {

    private final CompletableFuture<Void> future;
    private final String description;
    private final long deadlineMs;

    CollectiveHandle(CompletableFuture<Void> future, String description, long deadlineMs) {
        this.future = future;
        this.description = description;
        this.deadlineMs = deadlineMs;
    }

    public boolean isDone() {
        return future.isDone();
    }

    /** Waits for the operation; rethrows its {@link CommException} (or other failure) on this thread. */
    public void await() {
        try {
            // Queued operations of the same group run one after another, so allow for a few deadlines.
            future.get(4 * deadlineMs + 10_000, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof CommException c) {
                throw new CommException(c.getMessage(), c.peerRank(), c);
            }
            if (cause instanceof RuntimeException r) {
                throw r;
            }
            throw new IllegalStateException(description + " failed", cause);
        } catch (TimeoutException e) {
            throw new CommException(description + ": did not finish within " + (4 * deadlineMs + 10_000)
                    + " ms of waiting for it", -1);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CommException(description + ": interrupted while waiting", -1);
        }
    }

    @Override
    public String toString() {
        return description + (future.isDone() ? " (done)" : " (running)");
    }
}
