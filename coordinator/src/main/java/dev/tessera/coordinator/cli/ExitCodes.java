package dev.tessera.coordinator.cli;

/** The process exit codes of {@code tessera}. */
public final class ExitCodes {

    public static final int OK = 0;
    /** A bug or an environment failure: not the user's input. */
    public static final int FAILURE = 1;
    /** Bad input: a flag, a config key, a file. Fixable by the user; no stack trace. */
    public static final int USAGE = 2;

    private ExitCodes() {
    }
}
