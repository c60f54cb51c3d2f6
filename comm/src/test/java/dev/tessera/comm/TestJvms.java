package dev.tessera.comm;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Worker JVMs for comm's multi-process tests, with this JVM's class path and module flags and each one's output in
 * a log file. The launchers proper live in the coordinator, which comm must not depend on; this is the least a
 * test needs. {@link #close()} kills every process it started and deletes the logs.
 */
final class TestJvms implements AutoCloseable {

    private final List<String> jvmArgs;
    private final Path logDir;
    private final List<Child> children = new ArrayList<>();

    /** A started JVM and the file that collects its stdout and stderr. */
    record Child(String name, Process process, Path log) {

        /** What it printed so far, without the JVM's incubator notice. */
        String output() {
            try {
                return Files.exists(log) ? Files.readString(log)
                        .replaceAll("(?m)^WARNING: Using incubator modules: .*\n", "") : "";
            } catch (IOException e) {
                return "(cannot read " + log + ": " + e.getMessage() + ")";
            }
        }

        /** The exit code; -1 if it is still running after {@code timeoutMs}. */
        int waitFor(long timeoutMs) {
            try {
                return process.waitFor(timeoutMs, TimeUnit.MILLISECONDS) ? process.exitValue() : -1;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return -1;
            }
        }
    }

    TestJvms(List<String> extraJvmArgs) {
        List<String> in = ManagementFactory.getRuntimeMXBean().getInputArguments();
        List<String> args = new ArrayList<>();
        for (int i = 0; i < in.size(); i++) { // module flags (with a separate value where they take one)
            String a = in.get(i);
            if (a.startsWith("--add-") || a.startsWith("--enable-native-access")) {
                args.add(a);
                if (!a.contains("=") && i + 1 < in.size()) {
                    args.add(in.get(++i));
                }
            } else if (a.startsWith("-Dorg.bytedeco") || a.startsWith("-Djava.awt.headless")) {
                args.add(a);
            }
        }
        args.addAll(extraJvmArgs);
        this.jvmArgs = List.copyOf(args);
        try {
            this.logDir = Files.createTempDirectory("tessera-commtest-");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    synchronized Child start(String name, String mainClass, List<String> args, Map<String, String> env) {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(jvmArgs);
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), mainClass));
        command.addAll(args);
        Path log = logDir.resolve(name + ".log");
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().putAll(env);
        try {
            Child c = new Child(name, pb.start(), log);
            children.add(c);
            return c;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + name, e);
        }
    }

    synchronized boolean anyAlive() {
        return children.stream().anyMatch(c -> c.process().isAlive());
    }

    @Override
    public synchronized void close() {
        for (Child c : children) {
            try {
                c.process().destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        try (Stream<Path> walk = Files.walk(logDir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + logDir, e);
        }
    }
}
