package dev.tessera.comm.compress;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * Top-K sparsification: the {@code k = ceil(density x n)} values of largest magnitude, as (int32 index, float32
 * value) pairs in ascending index order, 8 bytes each and nothing else (the receiver knows n and the density, so
 * k too). Among equal magnitudes at the threshold the lower indices are kept, so the choice is deterministic.
 * ALGORITHMS.md 4 sizes it as {@code k x 64} bits. Used with {@link ErrorFeedback}.
 */
public final class TopK implements Encoder {

    private final double density;
    private float[] magnitudes = new float[0]; // scratch for the selection, grown with n

    public TopK(double density) {
        if (!(density > 0 && density <= 1)) {
            throw new IllegalArgumentException("Top-K density must be in (0, 1], got " + density);
        }
        this.density = density;
    }

    public double density() {
        return density;
    }

    /** The number of values kept of {@code n}: at least one. */
    public int kept(int n) {
        double exact = density * n;
        // A product a rounding error above a whole number is that number: 0.07 x 100 is 7.000000000000001.
        double whole = Math.rint(exact);
        double k = Math.abs(exact - whole) <= 4 * Math.ulp(exact) ? whole : Math.ceil(exact);
        return n == 0 ? 0 : (int) Math.max(1, Math.min(n, k));
    }

    /** ALGORITHMS.md 4's size model, in bits: 32 for the index and 32 for the value of each kept element. */
    public static long sizeBits(int n, double density) {
        return 64L * new TopK(density).kept(n);
    }

    @Override
    public int maxEncodedBytes(int n) {
        return 8 * kept(n);
    }

    @Override
    public int encode(DirectBuffer src, int index, int n, MutableDirectBuffer out, int outOffset, long seed) {
        int k = kept(n);
        if (magnitudes.length < n) {
            magnitudes = new float[n];
        }
        for (int i = 0; i < n; i++) {
            float v = src.getFloat((index + i) << 2);
            if (!Float.isFinite(v)) {
                throw new IllegalArgumentException("Top-K: element " + i + " of " + n + " is " + v);
            }
            magnitudes[i] = Math.abs(v);
        }
        if (k == 0) {
            return 0;
        }
        float threshold = Selection.kthLargest(magnitudes, n, k);
        int above = 0;
        for (int i = 0; i < n; i++) {
            if (Math.abs(src.getFloat((index + i) << 2)) > threshold) {
                above++;
            }
        }
        int tiesKept = k - above; // equal to the threshold: the lowest indices fill what is left
        int at = outOffset;
        for (int i = 0; i < n; i++) {
            float v = src.getFloat((index + i) << 2);
            float m = Math.abs(v);
            if (m > threshold || (m == threshold && tiesKept-- > 0)) {
                out.putInt(at, i);
                out.putFloat(at + 4, v);
                at += 8;
            }
        }
        return at - outOffset;
    }

    @Override
    public void decodeAdd(DirectBuffer in, int inOffset, int length, float scale, MutableDirectBuffer dst, int index,
                          int n) {
        if (length != 8 * kept(n)) {
            throw new IllegalArgumentException("Top-K of " + n + " values at density " + density + " is "
                    + 8 * kept(n) + " bytes, not " + length);
        }
        int previous = -1;
        for (int at = inOffset; at < inOffset + length; at += 8) {
            int i = in.getInt(at);
            if (i <= previous || i >= n) {
                throw new IllegalArgumentException("Top-K index " + i + " after " + previous + " is not ascending"
                        + " inside [0, " + n + ")");
            }
            previous = i;
            int o = (index + i) << 2;
            dst.putFloat(o, dst.getFloat(o) + scale * in.getFloat(at + 4));
        }
    }
}
