package dev.tessera.coordinator.spark;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.worker.io.AtomicFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A real Spark standalone cluster on loopback, from the Maven jars: one Master and one Worker of 2 cores, each
 * its own JVM, with a SPARK_HOME whose jars/ links Spark's jars (the Worker starts its executors from there).
 * {@link #close()} ends the Worker, its executors and whatever they started, then the Master.
 */
final class StandaloneCluster implements AutoCloseable {

    private static final Pattern MASTER_URL = Pattern.compile("Starting Spark master at (spark://\\S+)");
    private static final long START_TIMEOUT_NS = 90_000_000_000L;

    final Path dir;
    private Process master;
    private Process worker;
    String masterUrl;

    private StandaloneCluster(Path dir) {
        this.dir = dir;
    }

    static StandaloneCluster start(Path dir) throws Exception {
        StandaloneCluster cluster = new StandaloneCluster(dir);
        try {
            cluster.startProcesses();
            return cluster;
        } catch (Exception | Error e) {
            cluster.close();
            throw e;
        }
    }

    private void startProcesses() throws Exception {
        Path home = dir.resolve("spark-home");
        Files.createDirectories(home.resolve("jars"));
        for (String jar : SparkProcesses.sparkJars()) {
            Path link = home.resolve("jars").resolve(Path.of(jar).getFileName());
            if (!Files.exists(link)) {
                Files.createSymbolicLink(link, Path.of(jar));
            }
        }
        Path masterLog = dir.resolve("master.log");
        List<String> masterArgs = List.of("--host", "127.0.0.1", "--port", "0", "--webui-port", "0");
        master = SparkProcesses.start(with(SparkProcesses.sparkJava(List.of("-Xmx256m"),
                "org.apache.spark.deploy.master.Master"), masterArgs), masterLog, dir, home);
        Matcher url = awaitLine(masterLog, MASTER_URL, master, "the Master's URL");
        masterUrl = url.group(1);
        Path workerLog = dir.resolve("worker.log");
        Files.createDirectories(dir.resolve("work"));
        worker = SparkProcesses.start(with(SparkProcesses.sparkJava(List.of("-Xmx256m"),
                "org.apache.spark.deploy.worker.Worker"), List.of("--host", "127.0.0.1", "--cores", "2", "--memory",
                "4g", "--webui-port", "0", "--work-dir", dir.resolve("work").toString(), masterUrl)), workerLog, dir,
                home);
        awaitLine(workerLog, Pattern.compile("Successfully registered with master"), worker,
                "the Worker's registration with the Master");
    }

    private static List<String> with(List<String> command, List<String> args) {
        return Stream.concat(command.stream(), args.stream()).toList();
    }

    private static Matcher awaitLine(Path log, Pattern line, Process p, String what) throws Exception {
        long until = System.nanoTime() + START_TIMEOUT_NS;
        while (System.nanoTime() < until) {
            String text = Files.exists(log) ? Files.readString(log) : "";
            Matcher m = line.matcher(text);
            if (m.find()) {
                return m;
            }
            assertTrue(p.isAlive(), "Spark exited before it logged " + what + ":\n" + text);
            Thread.sleep(100);
        }
        throw new AssertionError("waited 90 s for " + what + " in " + log + ":\n" + Files.readString(log));
    }

    /** The executors the Worker runs now. */
    List<ProcessHandle> executors() {
        return worker.descendants().filter(h -> SparkProcesses.commandLine(h).contains("CoarseGrainedExecutorBackend"))
                .toList();
    }

    @Override
    public void close() throws Exception {
        try {
            SparkProcesses.stop(worker);
        } finally {
            SparkProcesses.stop(master);
            AtomicFiles.deleteRecursively(dir.resolve("spark-home")); // its links, not the jars in ~/.m2 they name
        }
    }
}
