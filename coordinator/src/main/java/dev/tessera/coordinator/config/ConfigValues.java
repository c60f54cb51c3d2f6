package dev.tessera.coordinator.config;

import dev.tessera.worker.job.SpecFields;
import java.lang.reflect.RecordComponent;
import java.util.Arrays;
import java.util.OptionalDouble;
import java.util.stream.Collectors;

/**
 * Typed reads from an assembled {@link ConfigTree}, and the binding of a whole spec record from them. Type errors
 * name the key, the expected type and what was found, prefixed with where the value was set.
 */
final class ConfigValues {

    private final ConfigTree tree;

    ConfigValues(ConfigTree tree) {
        this.tree = tree;
    }

    /**
     * Reads the record {@code type} whose keys sit under {@code prefix} ("" for the whole job): each component from
     * its key, by the component's type, in declaration order.
     */
    <R extends Record> R read(Class<R> type, String prefix) {
        RecordComponent[] components = type.getRecordComponents();
        Object[] values = new Object[components.length];
        for (int i = 0; i < components.length; i++) {
            values[i] = readValue(components[i].getType(), prefix + SpecFields.key(components[i]));
        }
        return SpecFields.construct(type, values);
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private Object readValue(Class<?> type, String path) {
        if (type == int.class) {
            return getInt(path);
        } else if (type == long.class) {
            return getLong(path);
        } else if (type == double.class) {
            return getDouble(path);
        } else if (type == boolean.class) {
            return getBoolean(path);
        } else if (type == OptionalDouble.class) {
            return getOptionalDouble(path);
        } else if (type == String.class) {
            return getOptionalString(path);
        } else if (type.isEnum()) {
            return getEnum(path, (Class) type);
        } else if (type.isRecord()) {
            return read(type.asSubclass(Record.class), path + ".");
        }
        throw new IllegalStateException(path + ": the spec has a component of type " + type.getSimpleName()
                + ", which no config key can hold");
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
        String allowed = Arrays.stream(type.getEnumConstants()).map(SpecFields::yamlName)
                .collect(Collectors.joining(", "));
        if (value instanceof String s) {
            for (E constant : type.getEnumConstants()) {
                if (SpecFields.yamlName(constant).equalsIgnoreCase(s.trim())) {
                    return constant;
                }
            }
        }
        throw ConfigError.at(tree.originOf(path), path + " must be one of " + allowed + " (got "
                + ConfigError.describe(value) + ")");
    }

    private RuntimeException wrongType(String path, String expected, Object value) {
        return ConfigError.at(tree.originOf(path), path + " must be " + expected + " (got "
                + ConfigError.describe(value) + ")");
    }
}
