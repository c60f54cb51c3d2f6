package dev.tessera.coordinator.config;

import dev.tessera.comm.UserInputException;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * The job config as nested maps while it is assembled: defaults, then a file, then {@code --set} flags. The
 * defaults' shape is the schema (a key they lack is unknown, a key holding a map is a section), so adding a
 * component to a section record of the spec is all it takes to make it settable. Each value remembers where it came
 * from, so later errors can point at the file line or the flag.
 */
final class ConfigTree {

    private final Map<String, Object> root;
    private final Map<String, String> originByPath = new HashMap<>();

    ConfigTree(Map<String, Object> defaults) {
        this.root = deepCopy(defaults);
    }

    /** Overlays a parsed document; {@code originOf} maps a dotted path to e.g. "job.yaml:3:5". */
    void merge(Map<?, ?> document, Function<String, String> originOf) {
        mergeInto(root, "", document, originOf);
    }

    /** Applies one {@code --set}: {@code dottedPath} must name a known key. */
    void set(String dottedPath, Object value, String origin) {
        String[] parts = dottedPath.split("\\.", -1);
        Map<String, Object> level = root;
        String prefix = "";
        for (int i = 0; i < parts.length - 1; i++) {
            Object next = childOrFail(level, prefix, parts[i], dottedPath, origin);
            if (!(next instanceof Map)) {
                throw ConfigError.at(origin, "unknown key '" + dottedPath + "': '" + prefix + parts[i]
                        + "' is a value, not a section");
            }
            level = asSection(next);
            prefix = prefix + parts[i] + ".";
        }
        String key = parts[parts.length - 1];
        Object existing = childOrFail(level, prefix, key, dottedPath, origin);
        if (existing instanceof Map && value instanceof Map<?, ?> map) {
            mergeInto(asSection(existing), dottedPath + ".", map, path -> origin);
        } else if (existing instanceof Map) {
            throw ConfigError.at(origin, "'" + dottedPath + "' is a section; set one of its keys ("
                    + String.join(", ", asSection(existing).keySet()) + "), e.g. " + dottedPath + "."
                    + asSection(existing).keySet().iterator().next() + "=...");
        } else {
            level.put(key, value);
            originByPath.put(dottedPath, origin);
        }
    }

    /** The value at a dotted path; the path must exist in the schema. */
    Object get(String dottedPath) {
        Object node = root;
        for (String part : dottedPath.split("\\.")) {
            node = asSection(node).get(part);
        }
        return node;
    }

    /** Where the value at a path was set: a file position, a flag, or "" for a default. */
    String originOf(String dottedPath) {
        return originByPath.getOrDefault(dottedPath, "");
    }

    private void mergeInto(Map<String, Object> target, String prefix, Map<?, ?> source,
                           Function<String, String> originOf) {
        for (Map.Entry<?, ?> entry : source.entrySet()) {
            String key = String.valueOf(entry.getKey());
            String path = prefix + key;
            String origin = originOf.apply(path);
            Object existing = childOrFail(target, prefix, key, path, origin);
            Object value = entry.getValue();
            if (existing instanceof Map) {
                if (value instanceof Map<?, ?> map) {
                    mergeInto(asSection(existing), path + ".", map, originOf);
                } else if (value != null) { // "eval:" with every child commented out means "keep defaults"
                    throw ConfigError.at(origin, "'" + path + "' must be a mapping with keys "
                            + String.join(", ", asSection(existing).keySet()) + " (got " + ConfigError.describe(value)
                            + ")");
                }
            } else {
                target.put(key, value);
                originByPath.put(path, origin);
            }
        }
    }

    private static Object childOrFail(Map<String, Object> level, String prefix, String key, String fullPath,
                                      String origin) {
        if (level.containsKey(key)) {
            return level.get(key);
        }
        throw unknownKey(level, prefix, key, fullPath, origin);
    }

    private static UserInputException unknownKey(Map<String, Object> level, String prefix, String key,
                                                 String fullPath, String origin) {
        String where = prefix.isEmpty() ? "at the top level" : "in " + prefix.substring(0, prefix.length() - 1);
        String rest = fullPath.substring(Math.min(fullPath.length(), prefix.length() + key.length()));
        String hint = ClosestMatch.among(key, level.keySet())
                .map(k -> " (did you mean '" + prefix + k + rest + "'?)").orElse("");
        return ConfigError.at(origin, "unknown key '" + fullPath + "'" + hint + "; allowed keys " + where + ": "
                + String.join(", ", level.keySet()));
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> asSection(Object node) {
        return (Map<String, Object>) node;
    }

    private static Map<String, Object> deepCopy(Map<String, Object> map) {
        Map<String, Object> copy = new LinkedHashMap<>();
        map.forEach((k, v) -> copy.put(k, v instanceof Map ? deepCopy(asSection(v)) : v));
        return copy;
    }
}
