package dev.tessera.coordinator;

import java.util.Arrays;
import java.util.function.IntPredicate;

/**
 * Finds a worker that stays stopped (state T in /proc, as its launcher sees it) for {@link #GRACE_NS}: a SIGSTOP'd or
 * suspended process that a silence limit of minutes would otherwise wait for. A stop shorter than the grace
 * (a debugger's attach, SIGSTOP then SIGCONT) is forgiven. Observations count only while polls are frequent:
 * if the coordinator itself was starved or suspended between two polls (e.g. the whole job was stopped with
 * Ctrl-Z and resumed), what it saw before says nothing about now, and the clock starts again.
 */
final class StoppedWorkers {

    /** Stopped this long: well inside the 15 s the job has to notice, well above any debugger's pause. */
    static final long GRACE_NS = 5_000_000_000L;
    private static final long MIN_POLL_GAP_NS = 250_000_000L;
    private static final long MAX_POLL_GAP_NS = 2_000_000_000L;

    private final long[] stoppedSince;
    private long lastPoll;

    StoppedWorkers(int workers) {
        stoppedSince = new long[workers];
        Arrays.fill(stoppedSince, -1);
    }

    /** The rank that has been stopped for the grace period, or -1. {@code stoppedNow} tells whether rank r is. */
    int poll(IntPredicate stoppedNow, long now) {
        if (lastPoll != 0 && now - lastPoll < MIN_POLL_GAP_NS) {
            return -1; // the caller loops every few ms; /proc need not be read that often
        }
        if (lastPoll != 0 && now - lastPoll > MAX_POLL_GAP_NS) {
            Arrays.fill(stoppedSince, -1);
        }
        lastPoll = now;
        for (int r = 0; r < stoppedSince.length; r++) {
            if (!stoppedNow.test(r)) {
                stoppedSince[r] = -1;
            } else if (stoppedSince[r] < 0) {
                stoppedSince[r] = now;
            } else if (now - stoppedSince[r] >= GRACE_NS) {
                return r;
            }
        }
        return -1;
    }
}
