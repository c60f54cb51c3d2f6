package dev.tessera.worker.model;

/**
 * Wall time per section of a training step, and per kernel within each section, to see where the step goes.
 * Sections are what {@link LayerHook} brackets (each kind of layer, forward and backward, and the syncs between
 * layers) and what the step loop adds (the optimizer); kernels are the few entry points every layer's compute
 * goes through (the gemms, fused attention, the SwiGLU gate, RMSNorm, RoPE, cross-entropy). A kernel's time is
 * recorded in the section it ran in, so the model itself has no timer calls and the report can say what each
 * layer's time is made of without counting it twice ({@link StepProfile}).
 *
 * <p>Off unless {@code -Dtessera.profile=true} (or {@link #enable}): then {@link #start}, {@link #open} and
 * {@link #startKernel} are one volatile read and return 0, and the matching stops see the 0 and return at once,
 * allocating nothing. A stamp is never 0 when on. Single-threaded use only (the step loop's thread); kernels
 * that fan out to helper threads are timed as a whole by the thread that called them.
 */
public final class ModelStepTimer {
    private static volatile boolean enabled = Boolean.getBoolean("tessera.profile");
    private static final StepProfile PROFILE = new StepProfile();
    private static int openSection = -1; // the section kernels are recorded in, -1: none
    private static boolean inKernel;     // a kernel that a timed kernel calls is part of its caller's time

    private ModelStepTimer() {
    }

    public static void enable(boolean on) {
        enabled = on;
    }

    public static boolean enabled() {
        return enabled;
    }

    /** The id of top-level section {@code name}, for {@link #stop(int, long)}; registering allocates, once. */
    public static int section(String name) {
        synchronized (PROFILE) {
            return PROFILE.section(name);
        }
    }

    /** The id of kernel {@code name}, for {@link #stopKernel}; registering allocates, once. */
    static int kernel(String name) {
        synchronized (PROFILE) {
            return PROFILE.kernel(name);
        }
    }

    /** A start stamp, 0 when off. */
    public static long start() {
        return enabled ? now() : 0L;
    }

    /** Adds the time since {@code start} to {@code section}; returns a new stamp for chaining sections. */
    public static long stop(String section, long start) {
        return start == 0 ? 0L : stop(section(section), start);
    }

    /** As {@link #stop(String, long)} by id, without looking the name up. */
    public static long stop(int section, long start) {
        if (start == 0) {
            return 0L;
        }
        long now = now();
        synchronized (PROFILE) {
            PROFILE.addSection(section, now - start);
        }
        return now;
    }

    /** Starts {@code section}, in which the kernels that run until {@link #close} are recorded. */
    static long open(int section) {
        if (!enabled) {
            return 0L;
        }
        openSection = section;
        inKernel = false; // a kernel that threw is over by now
        return now();
    }

    /** Ends the section {@link #open} started; returns a new stamp. */
    static long close(int section, long start) {
        if (start == 0) {
            return 0L;
        }
        openSection = -1;
        return stop(section, start);
    }

    /** A kernel's start stamp: 0 when off or when called from within another timed kernel. */
    static long startKernel() {
        if (!enabled || inKernel) {
            return 0L;
        }
        inKernel = true;
        return now();
    }

    /** Adds the time since {@code start} to {@code kernel} within the open section. */
    static void stopKernel(int kernel, long start) {
        if (start == 0) {
            return;
        }
        long elapsed = now() - start;
        inKernel = false;
        synchronized (PROFILE) {
            PROFILE.addKernel(openSection, kernel, elapsed);
        }
    }

    /** Forgets the times so far (after warm-up steps). */
    public static void reset() {
        synchronized (PROFILE) {
            PROFILE.clear();
        }
    }

    /**
     * Milliseconds per step and share of the step of each section, largest first, with the kernels that ran in it
     * indented beneath it; the total of the sections; then each kernel summed over all sections.
     */
    public static String report(int steps) {
        synchronized (PROFILE) {
            return PROFILE.report(steps);
        }
    }

    private static long now() {
        long t = System.nanoTime();
        return t == 0 ? 1 : t;
    }
}
