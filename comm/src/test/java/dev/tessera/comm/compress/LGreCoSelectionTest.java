package dev.tessera.comm.compress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.ByteBuffer;
import java.util.Arrays;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

class LGreCoSelectionTest {

    // Layer 0 has large gradients and is small; layers 1-4 have gradients a tenth as large and are ten times bigger.
    // Candidates: coarse, default, fine.
    private static final long[] LARGE_SIZES = {100, 200, 400};
    private static final double[] LARGE_SQUARED_ERRORS = {16, 1, 0};
    private static final long[] SMALL_SIZES = {1000, 2000, 4000};
    private static final double[] SMALL_SQUARED_ERRORS = {0.16, 0.01, 0.000625};

    /**
     * Under squared errors the large layer's fine setting pays for every small layer's coarse one (0.64 <= 1.04);
     * under norms it pays for three of them only (1.2 + 0.1 <= 1.4, while 1.6 is over), as the norm weighs the
     * small layers by their scale and not its square.
     */
    @Test
    void theErrorMeasureDecidesHowFarTheSmallLayersAreCompressed() {
        int[] squared = chosen(LGreCoError.SQUARED);
        assertEquals(2, squared[0]);
        assertEquals(400 + 4 * 1000, size(squared));
        int[] norm = chosen(LGreCoError.NORM);
        assertEquals(2, norm[0]);
        assertEquals(400 + 3 * 1000 + 2000, size(norm));
        assertEquals(3, Arrays.stream(norm, 1, 5).filter(c -> c == 0).count());
    }

    @Test
    void theNormIsTheSquareRootOfTheSquaredError() {
        assertEquals(0.25, LGreCoError.SQUARED.of(0.25));
        assertEquals(0.5, LGreCoError.NORM.of(0.25));
        assertEquals(0.0, LGreCoError.NORM.of(0.0));
    }

    /** Round 0 is the last warm-up step: the root measures every layer during it and solves at its end. */
    private static int[] chosen(LGreCoError measure) {
        LGreCoSelection selection = new LGreCoSelection(new Fixed(), new LGreCoSchedule(1, 10), 1000, 0, measure,
                true);
        assertNull(selection.pending());
        selection.beginRound(null, 0); // round 0 exchanges nothing, so it needs no group
        LayerObserver observer = selection.forBucket(new int[] {0, 1, 2, 3, 4});
        DirectBuffer values = new UnsafeBuffer(ByteBuffer.allocateDirect(16));
        for (int layer = 0; layer < 5; layer++) {
            observer.beforeEncode(layer, values, 0, 4);
        }
        selection.endRound();
        return selection.pending();
    }

    private static long size(int[] choice) {
        long total = LARGE_SIZES[choice[0]];
        for (int l = 1; l < choice.length; l++) {
            total += SMALL_SIZES[choice[l]];
        }
        return total;
    }

    /** Fixed sizes and squared errors per layer, whatever the values. */
    private static final class Fixed implements LayerCandidates {
        @Override
        public int layers() {
            return 5;
        }

        @Override
        public int count(int layer) {
            return 3;
        }

        @Override
        public int defaultIndex(int layer) {
            return 1;
        }

        @Override
        public void measure(int layer, DirectBuffer values, int index, int n, long[] sizeBits, double[] errors) {
            System.arraycopy(layer == 0 ? LARGE_SIZES : SMALL_SIZES, 0, sizeBits, 0, 3);
            System.arraycopy(layer == 0 ? LARGE_SQUARED_ERRORS : SMALL_SQUARED_ERRORS, 0, errors, 0, 3);
        }
    }
}
