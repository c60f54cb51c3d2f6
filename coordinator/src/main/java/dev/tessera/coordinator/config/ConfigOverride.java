package dev.tessera.coordinator.config;

import dev.tessera.comm.UserInputException;
import dev.tessera.worker.job.SpecFields;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import org.yaml.snakeyaml.error.YAMLException;

import java.nio.file.Path;

/**
 * One config key set to one value, over every layer below it (defaults, stored config, YAML files): a
 * {@code --set key=value} flag or a {@code Trainer.Builder.set(key, value)} call. Both hold the same keys as the
 * YAML, dotted ({@code optimizer.lr}); {@code origin} names the flag or call in error messages.
 *
 * @param value a YAML scalar's Java value: Integer, Long, Double, Boolean, String or null
 */
public record ConfigOverride(String key, Object value, String origin) {

    /** A {@code --set key=value} flag; the value is typed as YAML types it ("3e-4" a number, "null" null). */
    public static ConfigOverride parse(String set) {
        String origin = "--set " + set;
        int eq = set.indexOf('=');
        if (eq < 0) {
            throw ConfigError.at(origin, "expected key=value, e.g. --set train.steps=100");
        }
        String key = set.substring(0, eq).trim();
        if (key.isEmpty()) {
            throw ConfigError.at(origin, "the key before '=' is empty; expected key=value, e.g. --set train.steps=100");
        }
        return new ConfigOverride(key, parseScalar(set.substring(eq + 1), origin), origin);
    }

    /**
     * A value given from Java. Enums are spelled as in YAML ({@code OptimizerKind.CAME} is {@code came}), paths
     * as strings, a Float as the decimal it prints as, Short and Byte as Integer; any other type is refused, naming the key.
     */
    public static ConfigOverride of(String key, Object value) {
        String origin = "set(\"" + key + "\", " + value + ")";
        return new ConfigOverride(key, normalise(key, value, origin), origin);
    }

    private static Object normalise(String key, Object value, String origin) {
        if (value == null || value instanceof Integer || value instanceof Long || value instanceof Double
                || value instanceof Boolean || value instanceof String) {
            return value;
        } else if (value instanceof Float f) {
            return Double.parseDouble(f.toString()); // 0.002f means 0.002, not its binary neighbour 0.0020000000949
        } else if (value instanceof Short || value instanceof Byte) {
            return ((Number) value).intValue();
        } else if (value instanceof Enum<?> constant) {
            return SpecFields.yamlName(constant);
        } else if (value instanceof Path path) {
            return path.toString();
        }
        throw new UserInputException(origin + ": " + key + " cannot hold a " + value.getClass().getSimpleName()
                + "; give a number, string, boolean, enum constant, path or null");
    }

    private static Object parseScalar(String text, String origin) {
        try {
            return new Yaml(new SafeConstructor(new LoaderOptions())).load(text);
        } catch (YAMLException e) {
            throw ConfigError.at(origin, "the value is not valid YAML (" + e.getMessage().lines().findFirst()
                    .orElse("") + "); quote strings that contain ':' or '#'");
        }
    }
}
