package dev.tessera.coordinator.config;

import java.util.Collection;
import java.util.Optional;

/** "Did you mean": a typo'd key is usually a small edit away from the intended one. */
final class ClosestMatch {

    private ClosestMatch() {
    }

    static Optional<String> among(String typed, Collection<String> candidates) {
        String best = null;
        int bestDistance = Integer.MAX_VALUE;
        for (String candidate : candidates) {
            int d = editDistance(typed.toLowerCase(), candidate.toLowerCase());
            if (d < bestDistance) {
                best = candidate;
                bestDistance = d;
            }
        }
        // Beyond a third of the word the "suggestion" is noise rather than help.
        boolean closeEnough = best != null && bestDistance <= Math.max(1, typed.length() / 3);
        return closeEnough ? Optional.of(best) : Optional.empty();
    }

    static int editDistance(String a, String b) {
        int[] previous = new int[b.length() + 1];
        int[] current = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            previous[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            current[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int substitution = previous[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                current[j] = Math.min(substitution, Math.min(previous[j], current[j - 1]) + 1);
            }
            int[] swap = previous;
            previous = current;
            current = swap;
        }
        return previous[b.length()];
    }
}
