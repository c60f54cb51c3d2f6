package dev.tessera.coordinator.cli;

import dev.tessera.comm.UserInputException;
import dev.tessera.coordinator.JobFailedException;
import picocli.CommandLine;
import picocli.CommandLine.ParameterException;

import java.io.PrintWriter;

/**
 * Turns failures into one line on stderr ({@code tessera: <message>}) and an exit code: 2 for the user's
 * mistakes (flags, config), 1 for everything else, whose stack trace follows only with TESSERA_DEBUG=1 (or
 * -Dtessera.debug=true), since a trace buries the message for users but is what a bug report needs.
 */
public final class ErrorReporter implements CommandLine.IParameterExceptionHandler, CommandLine.IExecutionExceptionHandler {

    private final boolean debug;

    ErrorReporter(boolean debug) {
        this.debug = debug;
    }

    static boolean debugRequested() {
        return "1".equals(System.getenv("TESSERA_DEBUG")) || Boolean.getBoolean("tessera.debug");
    }

    @Override
    public int handleParseException(ParameterException ex, String[] args) {
        CommandLine command = ex.getCommandLine();
        String help = " (see '" + command.getCommandSpec().qualifiedName() + " --help')";
        String suggestion = "";
        if (ex instanceof CommandLine.UnmatchedArgumentException unmatched && !unmatched.getSuggestions().isEmpty()) {
            suggestion = "; did you mean " + String.join(" or ", unmatched.getSuggestions()) + "?";
        }
        report(command.getErr(), oneLine(ex.getMessage()) + suggestion + help, null);
        return ExitCodes.USAGE;
    }

    @Override
    public int handleExecutionException(Exception ex, CommandLine command, CommandLine.ParseResult parseResult) {
        if (ex instanceof ParameterException pe && findUserError(ex) == null) { // a command's own option checks
            return handleParseException(pe, new String[0]);
        }
        return report(ex, command.getErr());
    }

    /**
     * Runs a program built on the Java API (an example's {@code main}) and exits the JVM as the CLI would: 0, or
     * the failure reported as one line with exit code 2 for the user's mistakes and 1 for the rest.
     */
    public static void exitWith(ThrowingRunnable program) {
        int code = ExitCodes.OK;
        try {
            program.run();
        } catch (Exception e) {
            code = new ErrorReporter(debugRequested()).report(e, new PrintWriter(System.err, true));
        }
        System.exit(code);
    }

    /** What an API program is: a {@code main} body that may throw. */
    @FunctionalInterface
    public interface ThrowingRunnable {
        void run() throws Exception;
    }

    private int report(Exception ex, PrintWriter err) {
        UserInputException userError = findUserError(ex);
        if (userError != null) {
            report(err, oneLine(userError.getMessage()), debug ? ex : null);
            return ExitCodes.USAGE;
        }
        if (ex instanceof JobFailedException failed) { // its message already says what failed where
            report(err, "job failed: " + oneLine(failed.getMessage()), debug ? ex : null);
            return ExitCodes.FAILURE;
        }
        String hint = debug ? "" : " (set TESSERA_DEBUG=1 for the stack trace)";
        report(err, ex.getClass().getSimpleName() + ": " + oneLine(String.valueOf(ex.getMessage()))
                + hint, debug ? ex : null);
        return ExitCodes.FAILURE;
    }

    /** Training code may wrap a user error (e.g. thrown on a worker thread); the user still deserves exit 2. */
    private static UserInputException findUserError(Throwable t) {
        for (int depth = 0; t != null && depth < 16; t = t.getCause(), depth++) {
            if (t instanceof UserInputException u) {
                return u;
            }
        }
        return null;
    }

    private static void report(PrintWriter err, String message, Throwable traceOrNull) {
        err.println("tessera: " + message);
        if (traceOrNull != null) {
            traceOrNull.printStackTrace(err);
        }
        err.flush();
    }

    private static String oneLine(String message) {
        return message == null ? "" : message.strip().replaceAll("\\s*\\R\\s*", " ");
    }
}
