package dev.tessera.worker.job;

import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.RecordComponent;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalDouble;

/**
 * The spec's records read as their YAML shape: a component is a key, named by its Java name in snake_case
 * ({@code workerMemoryMb} is {@code worker_memory_mb}, {@code dFF} is {@code d_ff}) unless {@link Key} says
 * otherwise. Enums are their lower-case names, an empty {@link OptionalDouble} is null.
 */
public final class SpecFields {

    private SpecFields() {
    }

    /** The YAML key of {@code component}. */
    public static String key(RecordComponent component) {
        Key explicit = component.getAnnotation(Key.class);
        if (explicit != null) {
            return explicit.value();
        }
        String name = component.getName();
        StringBuilder key = new StringBuilder(name.length() + 4);
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            // A capital starts a word unless it continues a run of capitals ("dFF" is d_ff, not d_f_f).
            if (Character.isUpperCase(c) && i > 0 && !Character.isUpperCase(name.charAt(i - 1))) {
                key.append('_');
            }
            key.append(Character.toLowerCase(c));
        }
        return key.toString();
    }

    /** Enum constants are spelled lower-case in YAML ("float32", "adamw"). */
    public static String yamlName(Enum<?> constant) {
        return constant.name().toLowerCase(Locale.ROOT);
    }

    /** Nested maps with the YAML's keys, in declaration order. */
    public static Map<String, Object> toMap(Record spec) {
        Map<String, Object> map = new LinkedHashMap<>();
        for (RecordComponent component : spec.getClass().getRecordComponents()) {
            Object value;
            try {
                value = component.getAccessor().invoke(spec);
            } catch (IllegalAccessException | InvocationTargetException e) {
                throw new IllegalStateException("cannot read " + component, e);
            }
            map.put(key(component), plain(value));
        }
        return map;
    }

    /** Builds a spec record from its component values, in declaration order. */
    public static <R extends Record> R construct(Class<R> type, Object[] values) {
        RecordComponent[] components = type.getRecordComponents();
        Class<?>[] types = new Class<?>[components.length];
        for (int i = 0; i < components.length; i++) {
            types[i] = components[i].getType();
        }
        try {
            Constructor<R> canonical = type.getDeclaredConstructor(types);
            return canonical.newInstance(values);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot build " + type.getSimpleName(), e);
        }
    }

    private static Object plain(Object value) {
        if (value instanceof Record nested) {
            return toMap(nested);
        }
        if (value instanceof Enum<?> constant) {
            return yamlName(constant);
        }
        if (value instanceof OptionalDouble optional) {
            return optional.isPresent() ? optional.getAsDouble() : null;
        }
        return value;
    }
}
