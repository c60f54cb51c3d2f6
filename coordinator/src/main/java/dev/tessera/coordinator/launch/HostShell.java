package dev.tessera.coordinator.launch;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Short shell commands on a cluster host (over ssh unless it is the local one), each with a deadline. */
final class HostShell {

    /** What a command said (stdout and stderr together) and its exit code; -1 when it did not finish. */
    record Result(int code, String output) {
        boolean ok() {
            return code == 0;
        }
    }

    private HostShell() {
    }

    /** The command that runs {@code script} on {@code host}. */
    static List<String> command(ClusterHost host, String script) {
        return host.local() ? List.of("bash", "-c", script) : host.ssh().command(host.address(), script);
    }

    /** Runs {@code script} on {@code host}, giving up (and ending it) after {@code timeoutS}. */
    static Result run(ClusterHost host, String script, long timeoutS) {
        return run(List.of(new ProcessBuilder(command(host, script))), timeoutS);
    }

    /**
     * Runs {@code stages} as a pipeline (the first's output into the second's input, ...), the last stage's
     * output and every stage's errors captured; the code is the first stage's failure, else the last's.
     */
    static Result run(List<ProcessBuilder> stages, long timeoutS) {
        Path output = null;
        List<Process> started = new ArrayList<>();
        try {
            output = Files.createTempFile("tessera-host-", ".out");
            for (ProcessBuilder stage : stages) {
                stage.redirectError(ProcessBuilder.Redirect.appendTo(output.toFile()));
            }
            stages.get(stages.size() - 1).redirectOutput(ProcessBuilder.Redirect.appendTo(output.toFile()));
            stages.get(0).redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()));
            started.addAll(ProcessBuilder.startPipeline(stages));
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutS);
            int code = 0;
            for (Process p : started) {
                if (!p.waitFor(Math.max(0, until - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                    return new Result(-1, String.join(" ", stages.get(stages.size() - 1).command())
                            + " did not finish within " + timeoutS + " s");
                }
                if (code == 0) {
                    code = p.exitValue();
                }
            }
            return new Result(code, Files.readString(output, StandardCharsets.UTF_8));
        } catch (IOException e) {
            return new Result(-1, e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(-1, "interrupted");
        } finally {
            started.forEach(Process::destroyForcibly);
            if (output != null) {
                output.toFile().delete();
            }
        }
    }

    /** {@code text} as one word of a POSIX shell command, whatever it holds. */
    static String quote(String text) {
        return "'" + text.replace("'", "'\\''") + "'";
    }
}
