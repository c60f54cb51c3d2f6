package dev.tessera.coordinator;

/**
 * A job that stopped because part of it failed (a worker died, froze or reported an error). The CLI prints the
 * message as one line and exits 1; the message names the rank and host that failed.
 */
public final class JobFailedException extends RuntimeException {

    public JobFailedException(String message) {
        super(message);
    }
}
