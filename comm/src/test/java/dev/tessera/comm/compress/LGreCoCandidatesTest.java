package dev.tessera.comm.compress;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class LGreCoCandidatesTest {

    @Test
    void topKAndQsgdGridsCarryTheirDefaults() {
        LGreCoCandidates.Reals densities = LGreCoCandidates.topKDensities();
        assertArrayEquals(new double[] {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1}, densities.values());
        assertEquals(0.01, densities.defaultValue());
        LGreCoCandidates.Integers bits = LGreCoCandidates.qsgdBits();
        assertArrayEquals(new int[] {2, 3, 4, 5, 6, 7, 8}, bits.values());
        assertEquals(4, bits.defaultValue());
    }

    @Test
    void powerSgdRanksAreCappedAndIncludeTheDefault() {
        LGreCoCandidates.Integers wide = LGreCoCandidates.powerSgdRanks(512, 1024, 4);
        assertArrayEquals(new int[] {1, 2, 4, 8, 16, 32}, wide.values());
        assertEquals(4, wide.defaultValue());

        LGreCoCandidates.Integers narrow = LGreCoCandidates.powerSgdRanks(100, 6, 8);
        assertArrayEquals(new int[] {1, 2, 4, 6}, narrow.values());
        assertEquals(6, narrow.defaultValue());

        LGreCoCandidates.Integers offGrid = LGreCoCandidates.powerSgdRanks(300, 200, 12);
        assertArrayEquals(new int[] {1, 2, 4, 8, 12, 16, 32}, offGrid.values());
        assertEquals(12, offGrid.defaultValue());

        assertThrows(IllegalArgumentException.class, () -> LGreCoCandidates.powerSgdRanks(0, 5, 4));
        assertThrows(IllegalArgumentException.class, () -> LGreCoCandidates.powerSgdRanks(5, 5, 0));
    }
}
