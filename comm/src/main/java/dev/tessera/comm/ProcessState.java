package dev.tessera.comm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A process's scheduler state as its host sees it in {@code /proc/<pid>/stat}. A stopped process (SIGSTOP,
 * SIGTSTP, a debugger) is state {@code T} or {@code t}; a starved one is {@code R} or {@code S} and will answer
 * again. Telling them apart lets a job be patient with the second and still catch the first in seconds.
 */
public final class ProcessState {

    private ProcessState() {
    }

    /** Whether {@code pid} is stopped; false when it is running, gone, or /proc is not there. */
    public static boolean isStopped(long pid) {
        char state = state(pid);
        return state == 'T' || state == 't';
    }

    /** The state letter, or '?' when it cannot be read. */
    static char state(long pid) {
        try {
            return stateOf(Files.readString(Path.of("/proc", Long.toString(pid), "stat")));
        } catch (IOException | RuntimeException unreadable) {
            return '?';
        }
    }

    /** "pid (comm) S ...": comm may hold spaces and parentheses, so the state follows the last ')'. */
    static char stateOf(String stat) {
        int close = stat.lastIndexOf(')');
        return close >= 0 && close + 2 < stat.length() ? stat.charAt(close + 2) : '?';
    }
}
