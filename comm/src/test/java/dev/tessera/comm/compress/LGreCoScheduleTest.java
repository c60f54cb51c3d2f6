package dev.tessera.comm.compress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

class LGreCoScheduleTest {

    @Test
    void warmUpRunsTheDefaultsForItsSteps() {
        LGreCoSchedule schedule = new LGreCoSchedule(3, 5);
        assertTrue(schedule.warmingUp(0));
        assertTrue(schedule.warmingUp(2));
        assertFalse(schedule.warmingUp(3));
        assertFalse(schedule.warmingUp(1_000_000));
    }

    @Test
    void selectsAfterTheLastWarmUpStepThenEveryPeriod() {
        LGreCoSchedule schedule = new LGreCoSchedule(3, 5);
        long[] selecting = LongStream.range(0, 20).filter(schedule::selectsAfter).toArray();
        assertEquals(List.of(2L, 7L, 12L, 17L), LongStream.of(selecting).boxed().toList());
    }

    @Test
    void theFirstChoiceAppliesFromTheFirstStepAfterWarmUp() {
        for (long warmup = 1; warmup < 6; warmup++) {
            LGreCoSchedule schedule = new LGreCoSchedule(warmup, 4);
            long firstSelection = LongStream.iterate(0, s -> s + 1).filter(schedule::selectsAfter).findFirst()
                    .orElseThrow();
            assertTrue(schedule.warmingUp(firstSelection));
            assertFalse(schedule.warmingUp(firstSelection + 1));
        }
    }

    @Test
    void aPeriodOfOneSelectsAfterEveryStep() {
        LGreCoSchedule schedule = new LGreCoSchedule(1, 1);
        assertTrue(LongStream.range(0, 50).allMatch(schedule::selectsAfter));
    }

    @Test
    void rejectsEmptyWarmUpOrPeriodAndNegativeSteps() {
        assertThrows(IllegalArgumentException.class, () -> new LGreCoSchedule(0, 5));
        assertThrows(IllegalArgumentException.class, () -> new LGreCoSchedule(3, 0));
        LGreCoSchedule schedule = new LGreCoSchedule(3, 5);
        assertThrows(IllegalArgumentException.class, () -> schedule.selectsAfter(-1));
        assertThrows(IllegalArgumentException.class, () -> schedule.warmingUp(-1));
    }
}
