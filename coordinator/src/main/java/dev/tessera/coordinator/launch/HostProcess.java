package dev.tessera.coordinator.launch;

import dev.tessera.comm.JvmNoise;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * One worker of a cluster host, seen from the coordinator: a shell script that reads the worker's environment from
 * its standard input (so the job token is on no command line, here or on the host), says its pid, and execs the
 * worker JVM. On the local host the script runs under {@code bash -c}; on any other it is the remote command of an
 * {@code ssh} client, whose exit code is the worker's (255: ssh itself failed). Every line the worker prints goes to
 * {@code logs} with a "[rank R@host] " prefix; the last ones are kept for the failure message.
 */
final class HostProcess {

    /** The line the script prints before it execs the JVM: the pid the worker keeps. */
    static final String PID_LINE = "tessera-worker-pid ";
    private static final int KEPT_LINES = 40;

    private final int rank;
    private final ClusterHost host;
    private final Process process;
    private final Thread pump;
    private final Deque<String> lastLines = new ArrayDeque<>();
    private volatile long workerPid = -1;

    private HostProcess(int rank, ClusterHost host, Process process, PrintStream logs) {
        this.rank = rank;
        this.host = host;
        this.process = process;
        String prefix = "[rank " + rank + "@" + host.name() + "] ";
        this.pump = new Thread(() -> pump(prefix, logs), "tessera-log-rank-" + rank);
        pump.setDaemon(true);
        pump.start();
    }

    /**
     * Runs {@code script} on {@code host} and writes each of {@code env}'s values as one line to its standard input,
     * in the order of {@code envOrder} (the script reads them in that order).
     */
    static HostProcess start(int rank, ClusterHost host, String script, List<String> envOrder,
                             Map<String, String> env, PrintStream logs) {
        List<String> command = HostShell.command(host, script);
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        try {
            Process process = pb.start();
            OutputStream stdin = process.getOutputStream();
            StringBuilder lines = new StringBuilder();
            for (String key : envOrder) {
                lines.append(env.get(key)).append('\n');
            }
            stdin.write(lines.toString().getBytes(StandardCharsets.UTF_8));
            stdin.flush(); // kept open: the worker's stdin is this pipe (over ssh, the session) until it ends
            return new HostProcess(rank, host, process, logs);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start rank " + rank + " on " + host.describe() + ": "
                    + command.get(0), e);
        }
    }

    private void pump(String prefix, PrintStream logs) {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(),
                StandardCharsets.UTF_8))) {
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                if (workerPid < 0 && line.startsWith(PID_LINE)) {
                    workerPid = Long.parseLong(line.substring(PID_LINE.length()).strip());
                    continue;
                }
                if (JvmNoise.isNoise(line + "\n")) {
                    continue;
                }
                logs.println(prefix + line);
                synchronized (lastLines) {
                    lastLines.addLast(line);
                    if (lastLines.size() > KEPT_LINES) {
                        lastLines.removeFirst();
                    }
                }
            }
        } catch (IOException closed) {
            // the process is gone: what it said is in lastLines
        }
    }

    ClusterHost host() {
        return host;
    }

    Process process() {
        return process;
    }

    /** The worker JVM's pid on its host, once the script has said it; -1 before. */
    long workerPid() {
        return workerPid;
    }

    /** What it printed last, once its output has been read to the end (waits up to a second for that). */
    String output() {
        try {
            pump.join(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        synchronized (lastLines) {
            return String.join("\n", lastLines);
        }
    }

    /** Waits up to {@code timeoutMs} for the process to end; whether it has. */
    boolean waitFor(long timeoutMs) {
        try {
            return process.waitFor(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    int rank() {
        return rank;
    }
}
