package dev.tessera.coordinator.config;

import java.util.Arrays;
import java.util.Locale;
import java.util.OptionalDouble;
import java.util.stream.Collectors;

/**
 * Typed reads from an assembled {@link ConfigTree}. Type errors name the key, the expected type and what was
 * found, prefixed with where the value was set.
 */
final class ConfigValues {

    private final ConfigTree tree;

    ConfigValues(ConfigTree tree) {
        this.tree = tree;
    }

    int getInt(String path) {
        long value = getLong(path);
        if (value < Integer.MIN_VALUE || value > Integer.MAX_VALUE) {
            throw ConfigError.at(tree.originOf(path), path + " is out of range for a 32-bit integer (got " + value
                    + ")");
        }
        return (int) value;
    }

    long getLong(String path) {
        Object value = tree.get(path);
        if (value instanceof Integer || value instanceof Long) {
            return ((Number) value).longValue();
        }
        throw wrongType(path, "an integer", value);
    }

    /** Integers are accepted where a real number is expected: "lr: 1" means 1.0. */
    double getDouble(String path) {
        Object value = tree.get(path);
        if (value instanceof Integer || value instanceof Long || value instanceof Double) {
            return ((Number) value).doubleValue();
        }
        throw wrongType(path, "a number", value);
    }

    boolean getBoolean(String path) {
        Object value = tree.get(path);
        if (value instanceof Boolean b) {
            return b;
        }
        throw wrongType(path, "true or false", value);
    }

    /** A number that may be null (null turns the feature off, e.g. no momentum). */
    OptionalDouble getOptionalDouble(String path) {
        return tree.get(path) == null ? OptionalDouble.empty() : OptionalDouble.of(getDouble(path));
    }

    /** A string that may be null (null selects the documented default behaviour). */
    String getOptionalString(String path) {
        Object value = tree.get(path);
        if (value == null || value instanceof String) {
            return (String) value;
        }
        String quoteHint = value instanceof Number ? "; quote it to use it as text" : "";
        throw wrongType(path, "a string or null" + quoteHint, value);
    }

    /** Enum constants are spelled lower-case in YAML ("float32", "adamw"). */
    <E extends Enum<E>> E getEnum(String path, Class<E> type) {
        Object value = tree.get(path);
        String allowed = Arrays.stream(type.getEnumConstants()).map(ConfigValues::yamlName)
                .collect(Collectors.joining(", "));
        if (value instanceof String s) {
            for (E constant : type.getEnumConstants()) {
                if (yamlName(constant).equalsIgnoreCase(s.trim())) {
                    return constant;
                }
            }
        }
        throw ConfigError.at(tree.originOf(path), path + " must be one of " + allowed + " (got "
                + ConfigError.describe(value) + ")");
    }

    static String yamlName(Enum<?> constant) {
        return constant.name().toLowerCase(Locale.ROOT);
    }

    private RuntimeException wrongType(String path, String expected, Object value) {
        return ConfigError.at(tree.originOf(path), path + " must be " + expected + " (got "
                + ConfigError.describe(value) + ")");
    }
}
