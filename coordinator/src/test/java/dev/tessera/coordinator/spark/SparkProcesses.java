package dev.tessera.coordinator.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.tessera.comm.MediaDriverHost;
import dev.tessera.coordinator.ClusterTraining;
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
 * Master and Worker. Spark runs on its own class path (deploy/spark's, Spark's own library versions); Tessera's
 * jars go to spark-submit through deploy/spark/tessera-submit.
 */
final class SparkProcesses {

    static final Path SPARK_CLASSPATH = Path.of("../deploy/spark/target/spark-classpath.txt");
    static final Path RUNTIME_CLASSPATH = Path.of("target/runtime-classpath.txt");
    static final Path CLASSES = Path.of("target/classes");
    static final Path SUBMIT_SCRIPT = Path.of("../deploy/spark/tessera-submit");

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
     * {@code deploy/spark/tessera-submit --master MASTER [conf...] -- trainArgs}, started with its output in
     * {@code log}: the script as a user runs it, handed this build's jars (TESSERA_LIB) instead of the
     * distribution's lib/, which a build makes only after these tests.
     */
    static Process submit(Path workDir, String master, List<String> conf, List<String> trainArgs, Path log)
            throws IOException {
        List<String> command = new ArrayList<>(List.of("bash", SUBMIT_SCRIPT.toAbsolutePath().toString(), "--master",
                master));
        command.addAll(conf);
        command.add("--");
        command.addAll(trainArgs);
        ProcessBuilder pb = new ProcessBuilder(command).directory(workDir.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile());
        pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
        pb.environment().put("TESSERA_LIB", lib(workDir).toString());
        return pb.start();
    }

    /** Tessera's jars as the distribution's lib/ holds them (a module's classes folder, before packaging, packed). */
    private static Path lib(Path workDir) throws IOException {
        Path lib = Files.createDirectories(workDir.resolve("lib"));
        jar(CLASSES, lib.resolve("tessera-coordinator-test.jar"));
        int n = 0;
        for (String entry : Files.readString(RUNTIME_CLASSPATH).strip().split(":")) {
            Path p = Path.of(entry);
            if (Files.isDirectory(p)) {
                jar(p, lib.resolve("module-" + n++ + ".jar"));
            } else {
                Files.createSymbolicLink(lib.resolve(p.getFileName()), p);
            }
        }
        return lib;
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

    /**
     * Nothing of the run in {@code runDir} is left once its driver has ended: no worker process of any of its
     * attempts (by the job ids it recorded) among this JVM's descendants, no Aeron directory of theirs.
     */
    static void assertNothingLeft(Path runDir) throws Exception {
        List<String> ids = Files.readAllLines(runDir.resolve(ClusterTraining.JOB_IDS)).stream()
                .filter(l -> !l.isBlank()).toList();
        assertFalse(ids.isEmpty(), "the run recorded no cluster job id");
        long until = System.nanoTime() + 20_000_000_000L;
        List<Long> left;
        do {
            left = ProcessHandle.current().descendants().filter(ProcessHandle::isAlive)
                    .filter(p -> ids.stream().anyMatch(id -> commandLine(p).contains("--job-id " + id + " ")))
                    .map(ProcessHandle::pid).toList();
            Thread.sleep(100);
        } while (!left.isEmpty() && System.nanoTime() < until);
        assertEquals(List.of(), left, "worker processes of " + ids + " left running");
        Path shm = Path.of(MediaDriverHost.directoryFor("x", "y")).getParent();
        try (Stream<Path> dirs = Files.list(shm)) {
            assertEquals(List.of(), dirs.filter(d -> ids.stream().anyMatch(id -> d.getFileName().toString()
                    .startsWith("tessera-" + id + "-"))).toList(), "Aeron directories of " + ids + " left in " + shm);
        }
    }
}
