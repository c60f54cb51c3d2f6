package dev.tessera.coordinator.spark;

import dev.tessera.comm.ChildJvm;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;
import org.apache.spark.launcher.JavaModuleOptions;

/**
 * Spark's processes as a user runs them, from the Maven jars: spark-submit ({@code SparkSubmit}), a standalone
 * Master and Worker. Spark runs on its own class path (deploy/spark's, Spark's own library versions), Tessera's
 * jars are handed to spark-submit as an application jar and {@code --jars}, as deploy/spark/tessera-submit does.
 */
final class SparkProcesses {

    static final Path SPARK_CLASSPATH = Path.of("../deploy/spark/target/spark-classpath.txt");
    static final Path RUNTIME_CLASSPATH = Path.of("target/runtime-classpath.txt");
    static final Path CLASSES = Path.of("target/classes");

    private SparkProcesses() {
    }

    static List<String> sparkJars() throws IOException {
        return Arrays.asList(Files.readString(SPARK_CLASSPATH).strip().split(":"));
    }

    /** A java command on Spark's class path with the module flags Spark needs, then {@code jvmArgs}. */
    static List<String> sparkJava(List<String> jvmArgs, String mainClass) throws IOException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(Arrays.asList(JavaModuleOptions.defaultModuleOptions().split("\\s+")));
        command.addAll(jvmArgs);
        command.add("-cp");
        command.add(String.join(":", sparkJars()));
        command.add(mainClass);
        return command;
    }

    /**
     * {@code spark-submit --master MASTER --class SparkTrain [conf...] APP.jar trainArgs}: the driver, which is
     * Tessera's coordinator, runs with Tessera's JVM flags (Aeron's module exports) as tessera-submit gives it.
     */
    static List<String> submit(Path workDir, String master, List<String> conf, List<String> trainArgs)
            throws IOException {
        List<String> driverFlags = new ArrayList<>(ChildJvm.inheritedJvmFlags());
        driverFlags.add("-Xmx1g");
        List<String> command = sparkJava(driverFlags, "org.apache.spark.deploy.SparkSubmit");
        command.addAll(List.of("--master", master, "--class", SparkTrain.class.getName(), "--jars",
                String.join(",", dependencyJars(workDir))));
        command.addAll(conf);
        command.add(jar(CLASSES, workDir.resolve("tessera-coordinator.jar")).toString());
        command.addAll(trainArgs);
        return command;
    }

    /** Tessera's runtime dependencies as jars (a module's classes folder, in a build before packaging, packed). */
    private static List<String> dependencyJars(Path workDir) throws IOException {
        List<String> jars = new ArrayList<>();
        for (String entry : Files.readString(RUNTIME_CLASSPATH).strip().split(":")) {
            Path p = Path.of(entry);
            jars.add(Files.isDirectory(p) ? jar(p, workDir.resolve("dep-" + jars.size() + ".jar")).toString() : entry);
        }
        return jars;
    }

    static Path jar(Path classes, Path jar) throws IOException {
        try (OutputStream file = Files.newOutputStream(jar); JarOutputStream out = new JarOutputStream(file);
             Stream<Path> all = Files.walk(classes)) {
            for (Path p : (Iterable<Path>) all.filter(Files::isRegularFile)::iterator) {
                out.putNextEntry(new JarEntry(classes.relativize(p).toString().replace('\\', '/')));
                Files.copy(p, out);
                out.closeEntry();
            }
        }
        return jar;
    }

    /** Starts {@code command} with Spark on loopback, its output in {@code log}. */
    static Process start(List<String> command, Path log, Path workDir) throws IOException {
        return start(command, log, workDir, null);
    }

    /** As {@link #start(List, Path, Path)}, with {@code sparkHome} as SPARK_HOME (a standalone Master, Worker). */
    static Process start(List<String> command, Path log, Path workDir, Path sparkHome) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command).directory(workDir.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile());
        pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        if (sparkHome != null) {
            pb.environment().put("SPARK_HOME", sparkHome.toString());
            // What a distribution's load-spark-env.sh sets: without it the Worker looks for a source build.
            pb.environment().put("SPARK_SCALA_VERSION", "2.13");
        }
        return pb.start();
    }

    /** The whole command line from /proc (ProcessHandle.Info may cut a long class path short). */
    static String commandLine(ProcessHandle p) {
        try {
            return new String(Files.readAllBytes(Path.of("/proc", Long.toString(p.pid()), "cmdline")),
                    StandardCharsets.UTF_8).replace('\0', ' ');
        } catch (IOException gone) {
            return "";
        }
    }

    /** Ends {@code p} and everything it started (executors, workers), forcibly after a grace period. */
    static void stop(Process p) throws InterruptedException {
        if (p == null) {
            return;
        }
        List<ProcessHandle> all = new ArrayList<>(p.descendants().toList());
        all.add(p.toHandle());
        all.forEach(ProcessHandle::destroy);
        long until = System.nanoTime() + 10_000_000_000L;
        for (ProcessHandle h : all) {
            while (h.isAlive() && System.nanoTime() < until) {
                Thread.sleep(50);
            }
            h.destroyForcibly();
        }
    }
}
