package dev.tessera.comm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A stopped process is told from a running or sleeping one by its state in /proc. */
@Timeout(60)
class ProcessStateTest {

    @Test
    void aStoppedProcessIsStoppedAndAResumedOneIsNot() throws Exception {
        Process sleeper = new ProcessBuilder("sleep", "60").start();
        try {
            assertFalse(ProcessState.isStopped(sleeper.pid()), "a sleeping process is not stopped");
            signal("-STOP", sleeper.pid());
            awaitState(sleeper.pid(), true);
            signal("-CONT", sleeper.pid());
            awaitState(sleeper.pid(), false);
        } finally {
            sleeper.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
        assertFalse(ProcessState.isStopped(sleeper.pid()), "a process that is gone is not stopped");
    }

    @Test
    void theStateFollowsTheLastParenthesisOfTheCommandName() {
        assertEquals('T', ProcessState.stateOf("42 (a) R (b)) T 1 42 42 0 -1"));
        assertEquals('S', ProcessState.stateOf("7 (java) S 1 7 7 0 -1"));
        assertEquals('?', ProcessState.stateOf("garbage"));
    }

    private static void signal(String signal, long pid) throws Exception {
        assertEquals(0, new ProcessBuilder("kill", signal, Long.toString(pid)).start().waitFor());
    }

    /** Signals are delivered asynchronously: wait for the state to follow. */
    private static void awaitState(long pid, boolean stopped) throws InterruptedException {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (ProcessState.isStopped(pid) != stopped) {
            assertTrue(System.nanoTime() < until, "pid " + pid + " never became " + (stopped ? "stopped" : "running"));
            Thread.sleep(10);
        }
    }
}
