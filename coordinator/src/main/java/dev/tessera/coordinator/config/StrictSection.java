package dev.tessera.coordinator.config;

import dev.tessera.comm.UserInputException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * One mapping of a YAML file with a fixed schema (a cluster file), read strictly: a key outside the allowed set, a
 * missing required key or a value of the wrong type is a one-line error at the key's "file:line:col". The job YAML
 * has its schema in the spec's defaults ({@link ConfigTree}); this is for files whose schema is a few keys in code.
 */
final class StrictSection {

    private final YamlDocument doc;
    private final String path;
    private final Map<String, Object> values;

    private StrictSection(YamlDocument doc, String path, Map<String, Object> values) {
        this.doc = doc;
        this.path = path;
        this.values = values;
    }

    /** The document's top level, allowed to hold only {@code allowed}. */
    static StrictSection root(YamlDocument doc, List<String> allowed) {
        return new StrictSection(doc, "", doc.values()).allowOnly(allowed);
    }

    /** The dotted path of {@code key} in this section. */
    String pathOf(String key) {
        return path.isEmpty() ? key : path + "." + key;
    }

    /** "file:line:col" of {@code key}, or of this section where the key is absent. */
    String originOf(String key) {
        String at = doc.originOf(pathOf(key));
        return values.containsKey(key) || path.isEmpty() ? at : doc.originOf(path);
    }

    UserInputException error(String key, String message) {
        return ConfigError.at(originOf(key), pathOf(key) + ": " + message);
    }

    Set<String> keys() {
        return values.keySet();
    }

    boolean has(String key) {
        return values.containsKey(key) && values.get(key) != null;
    }

    private StrictSection allowOnly(List<String> allowed) {
        for (String key : values.keySet()) {
            if (!allowed.contains(key)) {
                String hint = ClosestMatch.among(key, allowed).map(k -> " (did you mean '" + pathOf(k) + "'?)")
                        .orElse("");
                throw ConfigError.at(doc.originOf(pathOf(key)), "unknown key '" + pathOf(key) + "'" + hint
                        + "; allowed keys " + (path.isEmpty() ? "at the top level" : "in " + path) + ": "
                        + String.join(", ", allowed));
            }
        }
        return this;
    }

    /** The mapping under {@code key}, allowed to hold only {@code allowed}; empty where the key is absent. */
    Optional<StrictSection> section(String key, List<String> allowed) {
        if (!has(key)) {
            return Optional.empty();
        }
        return Optional.of(new StrictSection(doc, pathOf(key), mapping(key)).allowOnly(allowed));
    }

    /** The mapping under {@code key} with any keys (names of the user's choosing, such as host names). */
    Map<String, Object> mapping(String key) {
        Object v = values.get(key);
        if (!(v instanceof Map<?, ?>)) {
            throw error(key, "must be a mapping (got " + ConfigError.describe(v) + ")");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> map = (Map<String, Object>) v;
        return map;
    }

    /** The entries under {@code key} as sections of their own, each allowed to hold only {@code allowed}. */
    List<StrictSection> sections(String key, List<String> allowed) {
        List<StrictSection> out = new ArrayList<>();
        mapping(key).forEach((name, v) -> {
            String at = pathOf(key) + "." + name;
            if (!(v instanceof Map<?, ?>)) {
                throw ConfigError.at(doc.originOf(at), at + ": must be a mapping with keys " + String.join(", ",
                        allowed) + " (got " + ConfigError.describe(v) + ")");
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> map = (Map<String, Object>) v;
            out.add(new StrictSection(doc, at, map).allowOnly(allowed));
        });
        return out;
    }

    /** The last part of this section's path: a host's name. */
    String name() {
        return path.substring(path.lastIndexOf('.') + 1);
    }

    String string(String key, String fallback) {
        Object v = values.get(key);
        if (v == null) {
            if (fallback == null) {
                throw error(key, "is required");
            }
            return fallback;
        }
        if (v instanceof Map || v instanceof List) {
            throw error(key, "must be a single value (got " + ConfigError.describe(v) + ")");
        }
        return String.valueOf(v);
    }

    int integer(String key, int fallback, int min, int max) {
        Object v = values.get(key);
        if (v == null) {
            return fallback;
        }
        if (!(v instanceof Integer i) || i < min || i > max) {
            throw error(key, "must be an integer from " + min + " to " + max + " (got " + ConfigError.describe(v)
                    + ")");
        }
        return i;
    }

    boolean bool(String key, boolean fallback) {
        Object v = values.get(key);
        if (v == null) {
            return fallback;
        }
        if (!(v instanceof Boolean b)) {
            throw error(key, "must be true or false (got " + ConfigError.describe(v) + ")");
        }
        return b;
    }

    List<String> strings(String key) {
        Object v = values.get(key);
        if (v == null) {
            return List.of();
        }
        if (!(v instanceof List<?> list) || list.stream().anyMatch(e -> e instanceof Map || e instanceof List
                || e == null)) {
            throw error(key, "must be a list of strings, e.g. [-XX:+UseParallelGC] (got "
                    + ConfigError.describe(v) + ")");
        }
        return list.stream().map(String::valueOf).toList();
    }
}
