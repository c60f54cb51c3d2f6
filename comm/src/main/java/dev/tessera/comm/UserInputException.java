package dev.tessera.comm;

/**
 * Bad input from the user: a config field, a file, a flag. The CLI prints {@link #getMessage()} as one
 * line (no stack trace) and exits with code 2, so the message must name the field or file and say what
 * would fix it.
 */
public class UserInputException extends RuntimeException {

    public UserInputException(String message) {
        super(message);
    }

    public UserInputException(String message, Throwable cause) {
        super(message, cause);
    }
}
