package dev.tessera.comm.compress;

/**
 * FedZip's quantizer (ALGORITHMS.md 5): Lloyd's k-means on a run of scalars, fixed so that every run of the same
 * values gives the same clusters: {@code k = min(3, distinct values)} centroids start at {@code linspace(min, max,
 * k)}, exactly {@link #ITERATIONS} iterations run, a value equidistant from two centroids joins the lower one, and
 * an empty cluster keeps its centroid. Centroids stay ascending, so cluster j is the j-th smallest.
 */
final class ScalarKMeans {

    static final int MAX_CLUSTERS = 3;
    static final int ITERATIONS = 4;

    private final double[] initial = new double[MAX_CLUSTERS];
    private final double[] centroids = new double[MAX_CLUSTERS];
    private final double[] sums = new double[MAX_CLUSTERS];
    private final int[] members = new int[MAX_CLUSTERS];
    private final float[] distinct = new float[MAX_CLUSTERS];

    /**
     * Clusters {@code values[0, m)} ({@code m >= 1}), writes each value's final cluster to {@code cluster[0, m)},
     * and returns the number of clusters k.
     */
    int cluster(float[] values, int m, byte[] cluster) {
        int k = distinctUpTo(values, m);
        float min = values[0];
        float max = values[0];
        for (int i = 1; i < m; i++) {
            min = Math.min(min, values[i]);
            max = Math.max(max, values[i]);
        }
        for (int j = 0; j < k; j++) {
            // numpy's linspace: the last point is max itself, not min plus a rounded step
            initial[j] = j == k - 1 ? max : min + j * ((double) max - min) / (k - 1);
            centroids[j] = initial[j];
        }
        for (int iteration = 0; iteration < ITERATIONS; iteration++) {
            assign(values, m, k, cluster);
            for (int j = 0; j < k; j++) {
                if (members[j] > 0) {
                    centroids[j] = sums[j] / members[j];
                }
            }
        }
        assign(values, m, k, cluster);
        return k;
    }

    double initialCentroid(int j) {
        return initial[j];
    }

    double centroid(int j) {
        return centroids[j];
    }

    private void assign(float[] values, int m, int k, byte[] cluster) {
        for (int j = 0; j < k; j++) {
            sums[j] = 0;
            members[j] = 0;
        }
        for (int i = 0; i < m; i++) {
            double v = values[i];
            int best = 0;
            for (int j = 1; j < k; j++) {
                if (Math.abs(v - centroids[j]) < Math.abs(v - centroids[best])) {
                    best = j;
                }
            }
            cluster[i] = (byte) best;
            sums[best] += v;
            members[best]++;
        }
    }

    /** The number of distinct values in {@code values[0, m)}, counted only up to {@link #MAX_CLUSTERS}. */
    private int distinctUpTo(float[] values, int m) {
        int found = 0;
        for (int i = 0; i < m && found < MAX_CLUSTERS; i++) {
            boolean seen = false;
            for (int d = 0; d < found; d++) {
                seen |= distinct[d] == values[i];
            }
            if (!seen) {
                distinct[found++] = values[i];
            }
        }
        return found;
    }
}
