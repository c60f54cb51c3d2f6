package dev.tessera.coordinator;

import dev.tessera.comm.ProcessState;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.TimeUnit;
import java.util.function.IntPredicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The stop detector on real processes, with the clock given by the test. */
@Timeout(60)
class StoppedWorkersTest {

    private static final long S = 1_000_000_000L;

    private final Process running = start();
    private final Process stopped = start();

    @AfterEach
    void end() throws Exception {
        running.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        stopped.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    }

    @Test
    void aProcessStoppedForTheGraceIsNamedAndARunningOneNever() throws Exception {
        stop(stopped);
        long[] pids = {running.pid(), stopped.pid()};
        IntPredicate stoppedNow = r -> ProcessState.isStopped(pids[r]);
        StoppedWorkers detector = new StoppedWorkers(2);
        long t = 1;
        for (long elapsed = 0; elapsed < StoppedWorkers.GRACE_NS; elapsed += S) {
            assertEquals(-1, detector.poll(stoppedNow, t + elapsed), "named before the grace, at " + elapsed / S + " s");
        }
        assertEquals(1, detector.poll(stoppedNow, t + StoppedWorkers.GRACE_NS));
    }

    /** The coordinator itself was suspended (or starved) between polls: what it saw before no longer counts. */
    @Test
    void aGapBetweenPollsStartsTheClockAgain() throws Exception {
        stop(stopped);
        long[] pids = {running.pid(), stopped.pid()};
        IntPredicate stoppedNow = r -> ProcessState.isStopped(pids[r]);
        StoppedWorkers detector = new StoppedWorkers(2);
        assertEquals(-1, detector.poll(stoppedNow, 1));
        long resumed = 1 + 60 * S;
        for (long elapsed = 0; elapsed < StoppedWorkers.GRACE_NS; elapsed += S) {
            assertEquals(-1, detector.poll(stoppedNow, resumed + elapsed), "counted the time before the gap");
        }
        assertEquals(1, detector.poll(stoppedNow, resumed + StoppedWorkers.GRACE_NS));
    }

    private static Process start() {
        try {
            return new ProcessBuilder("sleep", "60").start();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static void stop(Process p) throws Exception {
        assertEquals(0, new ProcessBuilder("kill", "-STOP", Long.toString(p.pid())).start().waitFor());
        long until = System.nanoTime() + 30 * S;
        while (!ProcessState.isStopped(p.pid())) {
            assertTrue(System.nanoTime() < until, "the signal never arrived");
            Thread.sleep(10);
        }
    }
}
