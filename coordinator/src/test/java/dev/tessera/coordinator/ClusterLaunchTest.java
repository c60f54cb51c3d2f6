package dev.tessera.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.tessera.comm.MediaDriverHost;
import dev.tessera.coordinator.cli.Main;
import dev.tessera.coordinator.config.ClusterFile;
import dev.tessera.coordinator.launch.Launcher;
import dev.tessera.coordinator.launch.NamespaceHosts;
import dev.tessera.worker.io.AtomicFiles;
import dev.tessera.worker.job.JobConfig;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.jar.JarOutputStream;
import java.util.zip.ZipEntry;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tessera launch} on two hosts reached over OpenSSH: network namespaces of this machine ({@link SshHosts}),
 * one worker each, talking Aeron UDP and Hazelcast across the namespaces' links. The distribution is this test's
 * class path (its jars linked, its class folders packed), copied by the launch itself to each host's folder, a new
 * one for each test.
 */
@ExtendWith(QuickStartChildJvms.class)
class ClusterLaunchTest {

    private static SshHosts hosts;
    private static Path work;
    private static int launches;

    @TempDir
    Path tmp;

    @BeforeAll
    static void startHosts() throws Exception {
        Optional<String> unavailable = NamespaceHosts.unavailableReason();
        unavailable.ifPresent(why -> System.out.println("ClusterLaunchTest skipped: " + why));
        assumeTrue(unavailable.isEmpty(), () -> unavailable.orElseThrow());
        work = Files.createTempDirectory("tessera-cluster-launch-");
        try {
            distributionOfThisClassPath(work.resolve("dist"));
            hosts = SshHosts.start(2, work.resolve("ssh"));
        } catch (Exception | Error e) {
            AtomicFiles.deleteRecursively(work);
            throw e;
        }
    }

    @AfterAll
    static void stopHosts() {
        if (hosts != null) {
            hosts.close();
        }
        if (work != null) {
            AtomicFiles.deleteRecursively(work);
        }
    }

    @Test
    void aJobTrainsOnTwoSshHostsTalkingAcrossTheirLinks() throws Exception {
        Path cluster = clusterFile(tmp, 30);
        Path copies = work.resolve("hosts-" + launches); // where clusterFile put the hosts' distributions
        Path run = tmp.resolve("run");
        long[] before = {hosts.bytesFrom(0), hosts.bytesFrom(1)};
        Run result = launch(cluster, run);
        assertEquals(0, result.code, result.err);
        for (String host : List.of("host-a", "host-b")) {
            assertTrue(result.err.contains("distribution: copying " + work.resolve("dist") + "/lib to " + host
                    + " (root@"), result.err);
        }
        assertTrue(result.err.contains("\n[rank 0@host-a] -XX:") && result.err.contains("\n[rank 1@host-b] -XX:"),
                "each worker's lines, prefixed: " + result.err);
        Map<Long, Double> losses = ClusterTrainingTest.losses(run);
        assertEquals(30, losses.size(), losses.toString());
        double first = losses.get(1L);
        double last = losses.get(30L);
        assertTrue(last < first - 0.3, "the loss falls: step 1 " + first + ", step 30 " + last);
        for (int h = 0; h < 2; h++) { // gradients (and Hazelcast) crossed each host's link
            long sent = hosts.bytesFrom(h) - before[h];
            assertTrue(sent > 1_000_000, "host " + h + " sent only " + sent + " bytes over its link");
        }
        assertNothingLeft(ClusterTrainingTest.jobIds(run));

        // A second launch finds both copies up to date and copies nothing.
        ByteArrayOutputStream again = new ByteArrayOutputStream();
        JobConfig job = Trainer.builder().set("mesh.dp", 2).build().job();
        try (Launcher launcher = ClusterFile.load(cluster).launchers(new PrintStream(again, true,
                StandardCharsets.UTF_8)).apply(job)) {
            assertEquals(2, List.of(launcher.placement(0), launcher.placement(1)).stream()
                    .map(p -> p.hostId()).distinct().count());
        }
        String said = again.toString(StandardCharsets.UTF_8);
        assertTrue(said.contains("host-a (root@" + hosts.address(0) + ") has " + copies.resolve("host-a")
                + " up to date") && said.contains("host-b (root@" + hosts.address(1) + ") has ") && !said.contains(
                "copying"), said);
    }

    @Test
    void aKilledRemoteWorkerFailsTheLaunchNamingItAndLeavesNothingOnEitherHost() throws Exception {
        Run result = killRankOne(tmp, "java");
        String last = result.err.strip().lines().reduce((a, b) -> b).orElse("");
        assertTrue(last.startsWith("tessera: job failed: worker rank 1 (pid ") && last.contains("on host-b (root@"
                + hosts.address(1) + ")") && last.contains("exited with code 255: its ssh session ended: the worker"
                + " was killed, or the link to host-b (root@" + hosts.address(1) + ") broke"), result.err);
    }

    @Test
    void aCutSshSessionStopsItsRemoteWorkerAndFailsTheLaunch() throws Exception {
        Run result = killRankOne(tmp, "ssh");
        String last = result.err.strip().lines().reduce((a, b) -> b).orElse("");
        assertTrue(last.startsWith("tessera: job failed: worker rank 1 (pid ") && last.contains("its ssh client here"
                + " was killed (signal 9); the worker on host-b (root@" + hosts.address(1) + ") stops with its"
                + " session"), result.err);
    }

    /**
     * Launches a long job, kills rank 1's {@code what} ("java": the worker on its host; "ssh": the ssh client here
     * that started it) with SIGKILL once three steps are done, and checks that the launch fails with exit code 1 and
     * that no process nor Aeron directory of the job is left, on either host.
     */
    private static Run killRankOne(Path tmp, String what) throws Exception {
        Path cluster = clusterFile(tmp, 100_000);
        Path run = tmp.resolve("run");
        CompletableFuture<Run> job = CompletableFuture.supplyAsync(() -> launch(cluster, run));
        try {
            Path metrics = run.resolve("metrics.jsonl");
            long until = System.nanoTime() + 180_000_000_000L;
            while (!(Files.exists(metrics) && Files.readAllLines(metrics).size() >= 3)) {
                assertTrue(System.nanoTime() < until && !job.isDone(), "the job never got to step 3: "
                        + (job.isDone() ? job.get().err : "still running"));
                Thread.sleep(50);
            }
            List<String> ids = ClusterTrainingTest.jobIds(run);
            ProcessHandle victim = jobProcesses(ids).filter(p -> commandLine(p).contains(" --rank 1 "))
                    .filter(p -> commandLine(p).startsWith("ssh ") == what.equals("ssh"))
                    .findFirst().orElseThrow(() -> new AssertionError("no " + what + " process of rank 1"));
            assertEquals(0, new ProcessBuilder("kill", "-KILL", Long.toString(victim.pid())).start().waitFor());
            Run result = job.get();
            assertEquals(1, result.code, result.err);
                assertNothingLeft(ClusterTrainingTest.jobIds(run));
            return result;
        } finally {
            if (!job.isDone()) { // the test failed early: end this job only
                jobProcesses(ClusterTrainingTest.jobIds(run)).forEach(ProcessHandle::destroyForcibly);
                job.get();
            }
        }
    }

    /** Every process of these jobs on this machine, which holds both hosts: workers, and the ssh clients here. */
    private static Stream<ProcessHandle> jobProcesses(List<String> jobIds) {
        return ProcessHandle.allProcesses().filter(ProcessHandle::isAlive).filter(p -> {
            String command = commandLine(p);
            return jobIds.stream().anyMatch(id -> command.contains("--job-id " + id + " "));
        });
    }

    private static void assertNothingLeft(List<String> jobIds) throws Exception {
        assertTrue(!jobIds.isEmpty(), "the run recorded no job id");
        long until = System.nanoTime() + 20_000_000_000L;
        while (jobProcesses(jobIds).findAny().isPresent() && System.nanoTime() < until) {
            Thread.sleep(100);
        }
        assertEquals(List.of(), jobProcesses(jobIds).map(p -> p.pid() + " " + commandLine(p)).toList(),
                "processes of " + jobIds + " left running");
        Path shm = Path.of(MediaDriverHost.directoryFor("x", "y")).getParent();
        try (Stream<Path> dirs = Files.list(shm)) {
            assertEquals(List.of(), dirs.filter(p -> jobIds.stream().anyMatch(id -> p.getFileName().toString()
                    .startsWith("tessera-" + id + "-"))).toList(), "Aeron directories left in " + shm);
        }
    }

    /** A process's command line with the shell quotes of an ssh client's remote command taken out. */
    private static String commandLine(ProcessHandle p) {
        return ClusterTrainingTest.commandLine(p).replace("'", "");
    }

    private record Run(int code, String err) {
    }

    private static Run launch(Path cluster, Path run) {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(new PrintStream(OutputStream.nullOutputStream()), new PrintStream(err, true,
                StandardCharsets.UTF_8), "launch", cluster.toString(), "--out", run.toString());
        return new Run(code, err.toString(StandardCharsets.UTF_8));
    }

    /** Two hosts of one worker each, and the small MoE job of ClusterTrainingTest with dp 2. */
    private static Path clusterFile(Path dir, int steps) throws IOException {
        Path copies = work.resolve("hosts-" + ++launches); // each test's launch copies the distribution anew
        StringBuilder yaml = new StringBuilder();
        yaml.append("coordinator: {address: ").append(hosts.coordinatorAddress()).append("}\n");
        yaml.append("distribution: ").append(work.resolve("dist")).append("\n");
        // The natives this test's JVM unpacked already: the hosts share this machine's disk. The flags' line is one
        // that every worker prints, prefixed with its rank and host.
        yaml.append("jvm_options: [-XX:+PrintCommandLineFlags, -Dorg.bytedeco.javacpp.cachedir=")
                .append(System.getProperty("org.bytedeco.javacpp.cachedir", work.resolve("javacpp").toString()))
                .append("]\nhosts:\n");
        String[] names = {"host-a", "host-b"};
        for (int h = 0; h < 2; h++) {
            yaml.append("  ").append(names[h]).append(":\n")
                    .append("    address: ").append(hosts.address(h)).append("\n")
                    .append("    workers: 1\n")
                    .append("    ssh: {user: root, key: ").append(hosts.clientKey())
                    .append(", options: [StrictHostKeyChecking=no, UserKnownHostsFile=/dev/null, LogLevel=ERROR]}\n")
                    .append("    distribution: ").append(copies.resolve(names[h])).append("\n")
                    .append("    java: ").append(Path.of(System.getProperty("java.home"), "bin", "java")).append("\n");
        }
        yaml.append("job:\n  set:\n");
        List<String> sets = new ArrayList<>(ClusterTrainingTest.job(dir, 2, steps));
        for (int i = 0; i < sets.size(); i++) {
            if (sets.get(i).equals("--set")) {
                String[] kv = sets.get(i + 1).split("=", 2);
                yaml.append("    ").append(kv[0]).append(": ").append(kv[1]).append("\n");
            }
        }
        yaml.append("    launch.worker_memory_mb: 1024\n    checkpoint.every: 10\n");
        return Files.writeString(dir.resolve("cluster.yaml"), yaml.toString());
    }

    /**
     * A distribution folder ({@code lib/*.jar}) of this JVM's class path: its jars linked (the hosts share this
     * machine's disk, so a link is as good as a copy and takes no space), its class folders packed into jars.
     */
    private static void distributionOfThisClassPath(Path dist) throws IOException {
        Path lib = Files.createDirectories(dist.resolve("lib"));
        for (String entry : System.getProperty("java.class.path").split(java.io.File.pathSeparator)) {
            Path path = Path.of(entry).toAbsolutePath();
            if (Files.isDirectory(path)) {
                if (!path.getFileName().toString().equals("test-classes")) {
                    packClasses(path, lib.resolve(path.getParent().getParent().getFileName() + "-classes.jar"));
                }
            } else if (path.toString().endsWith(".jar") && !Files.exists(lib.resolve(path.getFileName()))) {
                Files.createSymbolicLink(lib.resolve(path.getFileName()), path);
            }
        }
    }

    private static void packClasses(Path classes, Path jar) throws IOException {
        try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar));
             Stream<Path> files = Files.walk(classes)) {
            for (Path f : (Iterable<Path>) files.filter(Files::isRegularFile).sorted()::iterator) {
                out.putNextEntry(new ZipEntry(classes.relativize(f).toString().replace('\\', '/')));
                Files.copy(f, out);
                out.closeEntry();
            }
        }
    }
}
