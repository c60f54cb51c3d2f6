package dev.tessera.worker.model;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Wall time per named section of a training step, to see where the step goes. Off unless
 * {@code -Dtessera.profile=true} (or {@link #enable}): then {@code start} is one volatile read and
 * {@code stop} a no-op, so the instrumented code pays nothing measurable. Single-threaded use only
 * (the step loop's thread); kernels that fan out to helper threads are timed as a whole.
 */
public final class ModelStepTimer {
    private static volatile boolean enabled = Boolean.getBoolean("tessera.profile");
    private static final Map<String, long[]> TOTALS = new LinkedHashMap<>(); // name -> {nanos, calls}

    private ModelStepTimer() {
    }

    public static void enable(boolean on) {
        enabled = on;
    }

    public static boolean enabled() {
        return enabled;
    }

    /** A start stamp, 0 when off. */
    public static long start() {
        return enabled ? System.nanoTime() : 0L;
    }

    /** Adds the time since {@code start} to {@code section}; returns a new stamp for chaining sections. */
    public static long stop(String section, long start) {
        if (!enabled) {
            return 0L;
        }
        long now = System.nanoTime();
        synchronized (TOTALS) {
            long[] t = TOTALS.computeIfAbsent(section, k -> new long[2]);
            t[0] += now - start;
            t[1]++;
        }
        return now;
    }

    public static void reset() {
        synchronized (TOTALS) {
            TOTALS.clear();
        }
    }

    /** Milliseconds per step of each section, largest first, given how many steps were timed. */
    public static String report(int steps) {
        StringBuilder sb = new StringBuilder();
        synchronized (TOTALS) {
            double total = 0;
            for (long[] t : TOTALS.values()) {
                total += t[0];
            }
            double sum = total;
            sb.append(String.format(Locale.ROOT, "%-26s %9s %6s%n", "section", "ms/step", "%"));
            TOTALS.entrySet().stream()
                    .sorted((a, b) -> Long.compare(b.getValue()[0], a.getValue()[0]))
                    .forEach(e -> sb.append(String.format(Locale.ROOT, "%-26s %9.2f %6.1f%n", e.getKey(),
                            e.getValue()[0] / 1e6 / steps, 100.0 * e.getValue()[0] / sum)));
            sb.append(String.format(Locale.ROOT, "%-26s %9.2f%n", "total", total / 1e6 / steps));
        }
        return sb.toString();
    }
}
