package dev.tessera.comm.compress;

/**
 * When L-GreCo re-chooses (ALGORITHMS.md 4, "Schedule"). Steps count from 0. The first {@code warmupSteps} steps
 * run the uniform defaults; the errors measured during the last of them feed the first choice, and then every
 * {@code periodSteps} steps the errors of that step feed the next. A choice made after step {@code s} applies from
 * step {@code s + 1} on every rank, since the collectives must agree on encodings.
 */
public final class LGreCoSchedule {

    private final long warmupSteps;
    private final long periodSteps;

    /**
     * @param warmupSteps {@code T_w} >= 1: a choice needs at least one measured gradient, so no run starts with one
     * @param periodSteps {@code T_p} >= 1
     */
    public LGreCoSchedule(long warmupSteps, long periodSteps) {
        if (warmupSteps < 1 || periodSteps < 1) {
            throw new IllegalArgumentException("L-GreCo schedule: warm-up " + warmupSteps + " and period "
                    + periodSteps + " steps must both be >= 1");
        }
        this.warmupSteps = warmupSteps;
        this.periodSteps = periodSteps;
    }

    public long warmupSteps() {
        return warmupSteps;
    }

    public long periodSteps() {
        return periodSteps;
    }

    /** Whether step {@code step} runs the uniform defaults because no choice has been made yet. */
    public boolean warmingUp(long step) {
        return checked(step) < warmupSteps;
    }

    /**
     * Whether the errors measured during step {@code step} are solved for at its end: the last warm-up step and
     * every {@code periodSteps} steps after it.
     */
    public boolean selectsAfter(long step) {
        long sinceFirst = checked(step) - (warmupSteps - 1);
        return sinceFirst >= 0 && sinceFirst % periodSteps == 0;
    }

    private static long checked(long step) {
        if (step < 0) {
            throw new IllegalArgumentException("L-GreCo schedule: negative step " + step);
        }
        return step;
    }
}
