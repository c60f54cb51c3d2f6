package dev.tessera.comm;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A JVM started as a child of this one, running a class of this JVM's class path with this JVM's module flags
 * (the {@code --add-*} options Aeron, Agrona and ND4J need), its stdout and stderr in a log file. This is only how
 * to start one JVM; what to start where, and watching and stopping what was started, is the launchers' (the
 * coordinator's {@code launch} package). It lives in comm, the lowest module, so that the tests of every module
 * start their helper processes the same way.
 */
public record ChildJvm(String name, Process process, Path log) {

    /**
     * The system property whose value, split at whitespace, every child JVM gets after the inherited flags: options for
     * the JVMs this one starts and not for itself (the tests of tiny models give their short-lived workers
     * {@code -XX:TieredStopAtLevel=1}, which takes 40% off the CPU a worker spends starting up).
     */
    public static final String CHILD_OPTIONS_PROPERTY = "tessera.child_jvm_options";

    /**
     * The {@code --add-*}, {@code --enable-*} module flags and {@code -D} properties this JVM was started with, then
     * the options of {@link #CHILD_OPTIONS_PROPERTY}.
     */
    public static List<String> inheritedJvmFlags() {
        List<String> in = ManagementFactory.getRuntimeMXBean().getInputArguments();
        List<String> out = new ArrayList<>();
        for (int i = 0; i < in.size(); i++) {
            String a = in.get(i);
            if (a.startsWith("--add-") || a.startsWith("--enable-preview") || a.startsWith("--enable-native-access")) {
                out.add(a);
                if (!a.contains("=") && !a.equals("--enable-preview") && i + 1 < in.size()) {
                    out.add(in.get(++i)); // the value of a flag that takes it as a separate argument
                }
            } else if (a.startsWith("-Dorg.bytedeco") || a.startsWith("-Djava.awt.headless")) {
                out.add(a);
            }
        }
        String extra = System.getProperty(CHILD_OPTIONS_PROPERTY, "").strip();
        if (!extra.isEmpty()) {
            out.addAll(List.of(extra.split("\\s+")));
        }
        return out;
    }

    /** The command that runs {@code mainClass} in a new JVM: the inherited flags, then {@code jvmArgs}. */
    public static List<String> command(List<String> jvmArgs, String mainClass, List<String> args) {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(inheritedJvmFlags());
        command.addAll(jvmArgs);
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(mainClass);
        command.addAll(args);
        return command;
    }

    /**
     * Starts {@link #command} under {@code prefix} (commands that exec the JVM in a changed context, such as
     * {@code taskset -c 0} or {@code ip netns exec <namespace>}; each must exec rather than fork, so that the process
     * returned is the JVM itself), with {@code env} added to this process's environment and the output in {@code log}.
     */
    public static ChildJvm start(String name, List<String> prefix, List<String> jvmArgs, String mainClass,
                                 List<String> args, Map<String, String> env, Path log) {
        List<String> command = new ArrayList<>(prefix);
        command.addAll(command(jvmArgs, mainClass, args));
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().putAll(env);
        try {
            return new ChildJvm(name, pb.start(), log);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + name + ": " + command.get(0), e);
        }
    }

    /** What the child printed so far, without the JVM's own notices ({@link JvmNoise}). */
    public String output() {
        try {
            if (!Files.exists(log)) {
                return "";
            }
            StringBuilder out = new StringBuilder();
            for (String line : Files.readString(log).split("(?<=\n)")) {
                if (!JvmNoise.isNoise(line)) {
                    out.append(line);
                }
            }
            return out.toString();
        } catch (IOException e) {
            return "(cannot read " + log + ": " + e.getMessage() + ")";
        }
    }

    /** Waits for the exit; -1 if it is still running after {@code timeoutMs}. */
    public int waitFor(long timeoutMs) {
        try {
            return process.waitFor(timeoutMs, TimeUnit.MILLISECONDS) ? process.exitValue() : -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }
}
