package dev.tessera.coordinator.config;

import dev.tessera.comm.UserInputException;

import java.util.List;
import java.util.Map;

/** Builds the one-line config errors: "where: what is wrong", where is a file position or a --set flag. */
final class ConfigError {

    private ConfigError() {
    }

    /** {@code origin} is "" for built-in defaults, which need no pointer. */
    static UserInputException at(String origin, String message) {
        String line = origin == null || origin.isEmpty() ? message : origin + ": " + message;
        return new UserInputException(line.replace('\n', ' '));
    }

    /** How a value looks to the user, so "got ..." says both its type and value. */
    static String describe(Object value) {
        if (value == null) {
            return "null";
        }
        if (value instanceof String s) {
            return "string '" + s + "'";
        }
        if (value instanceof Integer || value instanceof Long || value instanceof java.math.BigInteger) {
            return "integer " + value;
        }
        if (value instanceof Number) {
            return "number " + value;
        }
        if (value instanceof Boolean) {
            return "boolean " + value;
        }
        if (value instanceof Map) {
            return "a mapping";
        }
        if (value instanceof List) {
            return "a list";
        }
        return value.getClass().getSimpleName() + " " + value;
    }
}
