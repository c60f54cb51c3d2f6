package dev.tessera.optimizers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class LrScheduleTest {

    @Test
    void warmsUpLinearlyThenDecaysByCosineToTheFloor() {
        LrSchedule s = new LrSchedule(1e-3, 1e-4, 10, 110);
        assertEquals(1e-4, s.at(1), 1e-18);
        assertEquals(5e-4, s.at(5), 1e-18);
        assertEquals(1e-3, s.at(10), 1e-18);
        assertEquals(1e-4 + 0.45e-3, s.at(60), 1e-15); // half way through the decay
        assertEquals(1e-4, s.at(110), 1e-18);
        assertEquals(1e-4, s.at(500), 1e-18);
        for (long t = 11; t < 110; t++) {
            assertTrue(s.at(t + 1) <= s.at(t));
        }
    }

    @Test
    void noWarmupStartsAtThePeak() {
        assertEquals(2.0, new LrSchedule(2.0, 0.0, 0, 100).at(0), 1e-15);
    }
}
