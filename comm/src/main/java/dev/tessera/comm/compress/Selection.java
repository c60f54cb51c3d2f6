package dev.tessera.comm.compress;

/** The k-th largest of an array's first n values, by quickselect in place: expected O(n), no allocation. */
final class Selection {

    private Selection() {
    }

    /** Reorders {@code values[0, n)} and returns its {@code k}-th largest ({@code 1 <= k <= n}). */
    static float kthLargest(float[] values, int n, int k) {
        if (k < 1 || k > n) {
            throw new IllegalArgumentException("k = " + k + " of " + n);
        }
        int target = n - k; // its index in ascending order
        int lo = 0;
        int hi = n - 1;
        long state = 0x9E3779B97F4A7C15L ^ n; // pivots by a fixed sequence: deterministic, no bad fixed inputs
        while (lo < hi) {
            state = SplitMix64.mix(state + 1);
            float pivot = values[lo + (int) Long.remainderUnsigned(state, hi - lo + 1)];
            // Three-way partition: [lo, lt) < pivot, [lt, gt] == pivot, (gt, hi] > pivot; ties cannot stall it.
            int lt = lo;
            int gt = hi;
            int i = lo;
            while (i <= gt) {
                float v = values[i];
                if (v < pivot) {
                    values[i++] = values[lt];
                    values[lt++] = v;
                } else if (v > pivot) {
                    values[i] = values[gt];
                    values[gt--] = v;
                } else {
                    i++;
                }
            }
            if (target < lt) {
                hi = lt - 1;
            } else if (target > gt) {
                lo = gt + 1;
            } else {
                return pivot;
            }
        }
        return values[target];
    }
}
