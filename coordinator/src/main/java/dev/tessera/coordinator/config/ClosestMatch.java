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

    /** Edit distance counting an adjacent swap ("trian" for "train") as one edit, the commonest typo. */
    static int editDistance(String a, String b) {
        int[][] d = new int[a.length() + 1][b.length() + 1];
        for (int i = 0; i <= a.length(); i++) {
            d[i][0] = i;
        }
        for (int j = 0; j <= b.length(); j++) {
            d[0][j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                d[i][j] = Math.min(d[i - 1][j - 1] + cost, Math.min(d[i - 1][j], d[i][j - 1]) + 1);
                boolean swapped = i > 1 && j > 1 && a.charAt(i - 1) == b.charAt(j - 2)
                        && a.charAt(i - 2) == b.charAt(j - 1);
                if (swapped) {
                    d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
                }
            }
        }
        return d[a.length()][b.length()];
    }
}
