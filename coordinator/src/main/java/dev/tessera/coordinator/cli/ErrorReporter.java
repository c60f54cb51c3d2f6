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
final class ErrorReporter implements CommandLine.IParameterExceptionHandler, CommandLine.IExecutionExceptionHandler {

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
        UserInputException userError = findUserError(ex);
        if (userError != null) {
            report(command.getErr(), oneLine(userError.getMessage()), debug ? ex : null);
            return ExitCodes.USAGE;
        }
        if (ex instanceof ParameterException pe) { // a command's own checks on its options
            return handleParseException(pe, new String[0]);
        }
        if (ex instanceof JobFailedException failed) { // its message already says what failed where
            report(command.getErr(), "job failed: " + oneLine(failed.getMessage()), debug ? ex : null);
            return ExitCodes.FAILURE;
        }
        String hint = debug ? "" : " (set TESSERA_DEBUG=1 for the stack trace)";
        report(command.getErr(), ex.getClass().getSimpleName() + ": " + oneLine(String.valueOf(ex.getMessage()))
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
