package dev.tessera.coordinator.run;

import java.util.Locale;

/** Short human-readable numbers for progress lines: "12.3k tok/s", "4m05s". */
final class HumanFormat {

    private HumanFormat() {
    }

    static String rate(double perSecond) {
        if (!Double.isFinite(perSecond)) {
            return "-";
        }
        if (perSecond >= 1e6) {
            return String.format(Locale.ROOT, "%.2fM", perSecond / 1e6);
        }
        if (perSecond >= 1e3) {
            return String.format(Locale.ROOT, "%.1fk", perSecond / 1e3);
        }
        return String.format(Locale.ROOT, "%.0f", perSecond);
    }

    static String duration(double seconds) {
        if (!Double.isFinite(seconds) || seconds < 0) {
            return "--";
        }
        long s = Math.round(seconds);
        if (s >= 3600) {
            return String.format(Locale.ROOT, "%dh%02dm", s / 3600, (s % 3600) / 60);
        }
        if (s >= 60) {
            return String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60);
        }
        return s + "s";
    }

    static String loss(double loss) {
        return String.format(Locale.ROOT, "%.4f", loss);
    }
}
