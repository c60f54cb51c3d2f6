package dev.tessera.worker.parallel;

import dev.tessera.optimizers.kernel.NativeMemory;
import org.agrona.UnsafeApi;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Where each sequence-parallel rank's tokens sit in the whole sequence, as runs of consecutive positions (one run
 * per rank when contiguous, two under zig-zag), and the copies between a rank's rows {@code [rows, Tl, D]} and the
 * same rows of a whole-sequence buffer {@code [rows, T, D]}: the reordering every scheme does around its exchange.
 * Copies are of raw bytes between native addresses; nothing is allocated per call.
 */
final class SequenceRuns {

    private final int seq;       // T
    private final int local;     // Tl
    private final int[][] runs;  // per rank: {local start, global start, length} triples

    /** {@code positions[r]}: the ascending global positions rank r holds, all of one length, together 0..T-1. */
    SequenceRuns(int[][] positions) {
        this.local = positions[0].length;
        this.seq = local * positions.length;
        boolean[] seen = new boolean[seq];
        this.runs = new int[positions.length][];
        for (int r = 0; r < positions.length; r++) {
            int[] p = positions[r];
            if (p.length != local) {
                throw new IllegalArgumentException("rank " + r + " holds " + p.length + " tokens, rank 0 " + local);
            }
            int count = 0;
            int[] triples = new int[3 * local];
            for (int t = 0; t < local; t++) {
                if (p[t] < 0 || p[t] >= seq || seen[p[t]]) {
                    throw new IllegalArgumentException("position " + p[t] + " of rank " + r + " is outside 0.."
                            + (seq - 1) + " or held twice");
                }
                seen[p[t]] = true;
                if (t > 0 && p[t] == p[t - 1] + 1) {
                    triples[3 * count - 1]++;
                } else {
                    triples[3 * count] = t;
                    triples[3 * count + 1] = p[t];
                    triples[3 * count + 2] = 1;
                    count++;
                }
            }
            runs[r] = java.util.Arrays.copyOf(triples, 3 * count);
        }
    }

    int seq() {
        return seq;
    }

    int local() {
        return local;
    }

    int ranks() {
        return runs.length;
    }

    /**
     * Rank {@code rank}'s rows {@code [rows, Tl, D]} at {@code src} into their positions in rows {@code [rows, T, D]}
     * of {@code dst} ({@code rowBytes}: D elements' bytes).
     */
    void toWhole(long src, int rank, int rows, INDArray dst, int rowBytes) {
        copy(src, NativeMemory.address(dst), rank, rows, rowBytes, true);
    }

    /** The inverse: rank {@code rank}'s positions of rows {@code [rows, T, D]} of {@code src} into {@code [rows, Tl, D]} at dst. */
    void fromWhole(INDArray src, int rank, int rows, long dst, int rowBytes) {
        copy(dst, NativeMemory.address(src), rank, rows, rowBytes, false);
    }

    private void copy(long part, long whole, int rank, int rows, int rowBytes, boolean toWhole) {
        int[] r = runs[rank];
        long partRow = (long) local * rowBytes;
        long wholeRow = (long) seq * rowBytes;
        for (int row = 0; row < rows; row++) {
            for (int i = 0; i < r.length; i += 3) {
                long bytes = (long) r[i + 2] * rowBytes;
                long p = part + row * partRow + (long) r[i] * rowBytes;
                long w = whole + row * wholeRow + (long) r[i + 1] * rowBytes;
                UnsafeApi.copyMemory(toWhole ? p : w, toWhole ? w : p, bytes);
            }
        }
    }
}
