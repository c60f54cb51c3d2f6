package dev.tessera.comm.compress;

import org.agrona.DirectBuffer;

/**
 * L-GreCo's candidates for PowerSGD (ALGORITHMS.md 4): per matrix layer the ranks of
 * {@link LGreCoCandidates#powerSgdRanks}, capped by its shape, so layers differ in how many they have. A rank's size
 * is the model {@link PowerSgd#sizeBits} (P and Q in float32, what the two all-reduces carry), and its error that of
 * one power iteration from a seeded Q ({@link PowerSgd#singleProcessError}), the variant ALGORITHMS.md 4 allows, used
 * for every candidate. Training's warm-started Q does better than one cold iteration, but the solver compares
 * candidates against each other at the same budget, and the cold error falls with the rank as the true one does.
 * Each layer's seed is fixed, so the root measures the same numbers however often, and a resumed run chooses as
 * the run it continues would have.
 */
public final class PowerSgdCandidates implements LayerCandidates {

    private final int[] rows;
    private final int[] cols;
    private final int[][] ranks;
    private final int[] defaults;
    private final long seed;

    /** Layer l is a {@code rows[l] x cols[l]} matrix; {@code defaultRank} is the uniform rank; {@code seed} the job's. */
    public PowerSgdCandidates(int[] rows, int[] cols, int defaultRank, long seed) {
        if (rows.length != cols.length) {
            throw new IllegalArgumentException(rows.length + " row counts for " + cols.length + " column counts");
        }
        this.rows = rows.clone();
        this.cols = cols.clone();
        this.seed = seed;
        this.ranks = new int[rows.length][];
        this.defaults = new int[rows.length];
        for (int l = 0; l < rows.length; l++) {
            LGreCoCandidates.Integers grid = LGreCoCandidates.powerSgdRanks(rows[l], cols[l], defaultRank);
            ranks[l] = grid.values();
            defaults[l] = grid.defaultIndex();
        }
    }

    /** Layer {@code layer}'s candidate {@code c}: its rank. */
    public int rank(int layer, int c) {
        return ranks[layer][c];
    }

    @Override
    public int layers() {
        return rows.length;
    }

    @Override
    public int count(int layer) {
        return ranks[layer].length;
    }

    @Override
    public int defaultIndex(int layer) {
        return defaults[layer];
    }

    /** Allocates a layer per candidate ({@link PowerSgd#singleProcessError}): it runs once per re-selection. */
    @Override
    public void measure(int layer, DirectBuffer values, int index, int n, long[] sizeBits, double[] errors) {
        if (n != rows[layer] * cols[layer]) {
            throw new IllegalArgumentException("layer " + layer + " is " + rows[layer] + " x " + cols[layer]
                    + ", measured on " + n + " values");
        }
        long layerSeed = Seeds.of(seed, 0, layer, 0);
        for (int c = 0; c < ranks[layer].length; c++) {
            int r = ranks[layer][c];
            sizeBits[c] = PowerSgd.sizeBits(rows[layer], cols[layer], r);
            errors[c] = PowerSgd.singleProcessError(values, index, rows[layer], cols[layer], r, layerSeed);
        }
    }
}
