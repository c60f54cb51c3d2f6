package dev.tessera.worker.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** ALGORITHMS.md 8 "Test oracles" 2: zig-zag balances causal attention work, contiguous placement does not. */
class SequencePlacementTest {

    @Test
    void zigZagBalancesTheCausalWorkOfFourRanks() {
        long[] zigzag = new long[4];
        long[] contiguous = new long[4];
        for (int r = 0; r < 4; r++) {
            zigzag[r] = SequencePlacement.causalScoreEntries(SequencePlacement.ZIGZAG.positions(24, 4, r));
            contiguous[r] = SequencePlacement.causalScoreEntries(SequencePlacement.CONTIGUOUS.positions(24, 4, r));
        }
        assertArrayEquals(new long[] {75, 75, 75, 75}, zigzag);
        assertArrayEquals(new long[] {21, 57, 93, 129}, contiguous);
        assertEquals(24L * 25 / (2 * 4), zigzag[0]); // s(s+1)/(2N)
    }

    @Test
    void theRanksHoldEveryPositionOnceAndContiguousMatchesTheMesh() {
        for (SequencePlacement placement : SequencePlacement.values()) {
            for (int ranks : new int[] {1, 2, 3, 4}) {
                int seq = 12 * ranks;
                boolean[] seen = new boolean[seq];
                for (int r = 0; r < ranks; r++) {
                    int[] positions = placement.positions(seq, ranks, r);
                    assertEquals(seq / ranks, positions.length);
                    int[] sorted = positions.clone();
                    Arrays.sort(sorted);
                    assertArrayEquals(sorted, positions, "ascending");
                    for (int p : positions) {
                        assertEquals(false, seen[p], placement + ": position " + p + " held twice");
                        seen[p] = true;
                    }
                    if (placement == SequencePlacement.CONTIGUOUS) {
                        Mesh.Range segment = new Mesh(1, ranks, 1).sequenceSegment(r, seq);
                        assertEquals(segment.start(), positions[0]);
                        assertEquals(segment.size(), positions.length);
                    }
                }
            }
        }
    }

    @Test
    void aSequenceThatDoesNotCutEvenlyIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> SequencePlacement.ZIGZAG.positions(20, 4, 0));
        assertThrows(IllegalArgumentException.class, () -> SequencePlacement.CONTIGUOUS.positions(10, 4, 1));
        assertThrows(IllegalArgumentException.class, () -> SequencePlacement.ZIGZAG.positions(24, 4, 4));
    }
}
