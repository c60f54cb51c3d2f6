package dev.tessera.coordinator;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.coordinator.cli.Main;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.coordinator.launch.Launcher;
import dev.tessera.coordinator.launch.LocalLauncher;
import dev.tessera.coordinator.launch.NamespaceHosts;
import dev.tessera.coordinator.launch.Placement;
import dev.tessera.coordinator.launch.WorkerState;
import dev.tessera.worker.run.WorkerArgs;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Workers on hosts of their own: each in a network namespace with its own address from 198.18.0.0/15, the
 * coordinator on the bridge between them ({@link NamespaceHosts}). The job's Hazelcast traffic and its Aeron UDP cross
 * real interfaces, nothing can take loopback or shared memory, and the run still follows the single-process run.
 * And the supervisor with a launcher that cannot see processes: a dead worker is still caught by membership.
 */
@Timeout(300)
class NonLoopbackClusterTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @Test
    void twoWorkersInNetworkNamespacesTrainTheJobOverUdpBetweenTheirAddresses() throws Exception {
        Optional<String> unavailable = NamespaceHosts.unavailableReason();
        assumeTrue(unavailable.isEmpty(), () -> unavailable.orElseThrow());
        try (NamespaceHosts hosts = NamespaceHosts.create(2, null)) {
            Path single = tmp.resolve("dp1");
            assertEquals(0, Main.run(ClusterTrainingTest.job(single, 1, 20).toArray(String[]::new)));
            Path run = tmp.resolve("dp2-netns");
            List<String> seen = new ArrayList<>();
            CompletableFuture<TrainResult> training = train(ClusterTrainingTest.job(run, 2, 20),
                    j -> hosts.launcher(j.launch().workerMemoryMb()));
            // Each worker's Hazelcast listener (TCP) and Aeron endpoint (UDP) on its namespace's address (Java's TCP
            // sockets show it IPv4-mapped), and no Hazelcast listener on any other address of its namespace. The
            // ports were picked at launch (launch.*_port 0): the workers' command lines say which.
            String[] expected = new String[4];
            int hazelcastPort = 0;
            boolean[] found = new boolean[4];
            try {
                while (!training.isDone() && !(found[0] && found[1] && found[2] && found[3])) {
                    if (hazelcastPort == 0) {
                        List<String> ids = ClusterTrainingTest.jobIds(run);
                        String jobId = ids.isEmpty() ? "" : ids.get(ids.size() - 1);
                        OptionalInt hz = ClusterTrainingTest.workerPort(jobId, "hazelcast-port");
                        OptionalInt aeron = ClusterTrainingTest.workerPort(jobId, "aeron-port");
                        if (ids.isEmpty() || hz.isEmpty() || aeron.isEmpty()) {
                            Thread.sleep(50);
                            continue;
                        }
                        hazelcastPort = hz.getAsInt();
                        for (int r = 0; r < 2; r++) {
                            String address = "(\\[::ffff:)?" + hosts.workerAddress(r).replace(".", "\\.") + "\\]?:";
                            expected[2 * r] = "tcp LISTEN \\d+ \\d+ " + address + hazelcastPort + " .*";
                            expected[2 * r + 1] = "udp UNCONN \\d+ \\d+ " + address + (aeron.getAsInt() + r) + " .*";
                        }
                    }
                    for (int r = 0; r < 2; r++) {
                        for (String line : hosts.socketsOf(r)) {
                            for (int i = 2 * r; i < 2 * r + 2; i++) {
                                if (!found[i] && line.matches(expected[i])) {
                                    found[i] = true;
                                    seen.add(hosts.namespace(r) + ": " + line.strip());
                                }
                            }
                            assertFalse(line.startsWith("tcp LISTEN ") && line.contains(":" + hazelcastPort + " ")
                                    && !line.matches(expected[2 * r]), "rank " + r + " listens elsewhere: " + line);
                        }
                    }
                    Thread.sleep(50);
                }
            } finally {
                if (!found[0] || !found[1] || !found[2] || !found[3]) { // failed early: end the job before the hosts
                    List<String> ids = ClusterTrainingTest.jobIds(run);
                    ClusterTrainingTest.workers().filter(p -> ids.stream().anyMatch(id -> ClusterTrainingTest
                            .commandLine(p).contains("--job-id " + id + " "))).forEach(ProcessHandle::destroyForcibly);
                }
            }
            assertEquals(20, training.join().summary().orElseThrow().steps());
            System.out.println("bound in the namespaces:\n  " + String.join("\n  ", seen));
            for (int i = 0; i < 4; i++) {
                assertTrue(found[i], "no socket matching '" + expected[i] + "' seen while the job ran: " + seen);
            }

            ClusterTrainingTest.assertLossesClose(single, run);
            INDArray expectedWeights = ClusterTrainingTest.load(single.resolve("checkpoints/step-0000020"));
            INDArray actual = ClusterTrainingTest.load(run.resolve("checkpoints/step-0000020"));
            double relative = ClusterTrainingTest.relativeDifference(actual, expectedWeights);
            assertTrue(relative <= ClusterTrainingTest.TOLERANCE, "final weights differ by " + relative + " in norm");
            // The gradients went through the veths (UDP, not shared memory): every step each rank sends its half of
            // the gradient buffer and receives the other half back, in float32.
            long params = JSON.readTree(run.resolve("summary.json").toFile()).get("params").asLong();
            for (int r = 0; r < 2; r++) {
                long bytes = hosts.bytesFrom(r);
                System.out.printf("rank %d sent %,d bytes over its veth (%,d parameters, 20 steps)%n", r, bytes, params);
                assertTrue(bytes >= 20 * params * 4 / 2, "rank " + r + " sent only " + bytes + " bytes over its veth");
            }
            ClusterTrainingTest.assertNothingLeft(ClusterTrainingTest.jobIds(run));
        }
    }

    /** A launcher that starts workers but cannot see them (as a remote scheduler would): membership catches a kill. */
    @Test
    void aWorkerKilledBehindALauncherThatCannotSeeItIsCaughtByMembership() throws Exception {
        Path run = tmp.resolve("unseen");
        CompletableFuture<TrainResult> training = train(ClusterTrainingTest.job(run, 2, 100000),
                j -> new Unseeing(LocalLauncher.onLoopback(2, j.launch().workerMemoryMb())));
        try {
            Path metrics = run.resolve("metrics.jsonl");
            long until = System.nanoTime() + 120_000_000_000L;
            while (!(Files.exists(metrics) && Files.readAllLines(metrics).size() >= 3)) {
                assertTrue(System.nanoTime() < until && !training.isDone(), "the job never got to step 3");
                Thread.sleep(50);
            }
            String jobId = ClusterTrainingTest.jobIdOf(run);
            ProcessHandle victim = ClusterTrainingTest.workers()
                    .filter(p -> ClusterTrainingTest.commandLine(p).contains("--job-id " + jobId + " --rank 1 --"))
                    .findFirst().orElseThrow(() -> new AssertionError("no worker of rank 1"));
            long killed = System.nanoTime();
            assertEquals(0, new ProcessBuilder("kill", "-KILL", Long.toString(victim.pid())).start().waitFor());
            CompletionException failed = assertThrows(CompletionException.class, training::join);
            double seconds = (System.nanoTime() - killed) / 1e9;
            assertInstanceOf(JobFailedException.class, failed.getCause(), String.valueOf(failed.getCause()));
            String message = failed.getCause().getMessage();
            System.out.printf("a kill behind an unseeing launcher stopped the job after %.1f s: %s%n", seconds, message);
            assertTrue(message.contains("rank 1") && (message.contains("left the cluster")
                    || message.contains("stopped answering")), message);
            assertFalse(message.contains("exited with code"), "the launcher cannot see exit codes: " + message);
            assertTrue(seconds <= 15, "the kill was noticed after " + seconds + " s");
        } finally {
            if (!training.isDone()) {
                List<String> ids = ClusterTrainingTest.jobIds(run);
                ClusterTrainingTest.workers().filter(p -> ids.stream().anyMatch(id -> ClusterTrainingTest
                        .commandLine(p).contains("--job-id " + id + " "))).forEach(ProcessHandle::destroyForcibly);
                training.exceptionally(e -> null).join();
            }
        }
        ClusterTrainingTest.assertNothingLeft(ClusterTrainingTest.jobIds(run));
    }

    /**
     * Trains the job of the CLI arguments {@code args} (its --set and --out) on another thread, each attempt's
     * workers from {@code launchers}.
     */
    private static CompletableFuture<TrainResult> train(List<String> args, Function<JobConfig, Launcher> launchers) {
        Trainer.Builder trainer = Trainer.builder().trainWith(new ClusterTraining(launchers))
                .log(new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
        for (int i = 0; i < args.size(); i++) {
            if (args.get(i).equals("--set")) {
                trainer.set(args.get(++i));
            } else if (args.get(i).equals("--out")) {
                trainer.out(Path.of(args.get(++i)));
            }
        }
        return CompletableFuture.supplyAsync(() -> {
            try {
                return trainer.build().fit();
            } catch (RuntimeException e) {
                throw e;
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
    }

    /** Starts and stops workers through another launcher, but tells nothing about their processes. */
    private record Unseeing(Launcher inner) implements Launcher {

        @Override
        public Placement coordinator() {
            return inner.coordinator();
        }

        @Override
        public Placement placement(int rank) {
            return inner.placement(rank);
        }

        @Override
        public void start(WorkerArgs args, Map<String, String> env) {
            inner.start(args, env);
        }

        @Override
        public WorkerState state(int rank) {
            return WorkerState.UNSEEN;
        }

        @Override
        public String describe(int rank) {
            return "worker rank " + rank + " (somewhere)";
        }

        @Override
        public void awaitExit(long timeoutMs) {
            inner.awaitExit(timeoutMs);
        }

        @Override
        public void close() {
            inner.close();
        }
    }
}
