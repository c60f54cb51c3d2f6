package dev.tessera.deploy;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The tarball {@code mvn package} builds, as a user gets it: unpacked into an empty folder outside the checkout and
 * run from there with its own {@code bin/tessera} (no Maven, no pom.xml): the version, the default job, a tiny
 * training run and the export of its checkpoint.
 */
@Timeout(600)
class DistributionTest {

    /** Generous: the host is shared, and the first JVM of a run may wait for the disk. */
    private static final long COMMAND_DEADLINE_S = 240;

    @TempDir
    static Path tmp;
    static Path home;

    @BeforeAll
    static void unpack() throws Exception {
        Path tarball = Path.of(System.getProperty("tessera.distribution"));
        assertTrue(Files.isRegularFile(tarball), tarball + " was not built");
        Result tar = run(tmp, List.of("tar", "-xzf", tarball.toString(), "-C", tmp.toString()));
        assertEquals(0, tar.code, tar.err);
        home = tmp.resolve("tessera-" + System.getProperty("tessera.version"));
    }

    @Test
    void holdsTheLauncherTheJarsAndTheConfig() throws IOException {
        try (Stream<Path> top = Files.list(home)) {
            assertEquals(List.of("bin", "conf", "examples", "lib"),
                    top.map(p -> p.getFileName().toString()).sorted().toList());
        }
        assertTrue(Files.getPosixFilePermissions(home.resolve("bin/tessera"))
                .contains(PosixFilePermission.OWNER_EXECUTE));
        String version = System.getProperty("tessera.version");
        for (String jar : List.of("tessera-coordinator-" + version + ".jar", "tessera-worker-" + version + ".jar",
                "tessera-examples-" + version + ".jar", "nd4j-native-1.0.0-M2.1-linux-x86_64-avx2.jar")) {
            assertTrue(Files.isRegularFile(home.resolve("lib").resolve(jar)), "lib/ lacks " + jar);
        }
        try (Stream<Path> lib = Files.list(home.resolve("lib"))) {
            assertFalse(lib.anyMatch(p -> p.getFileName().toString().startsWith("archunit")), "no test jars in lib/");
        }
        String options = Files.readString(home.resolve("conf/jvm.options"));
        assertTrue(options.contains("--add-modules jdk.incubator.vector") && !options.contains("${"), options);
        assertTrue(Files.isRegularFile(home.resolve("conf/tessera.yaml")));
        assertTrue(Files.isRegularFile(home.resolve("examples/jobs/quickstart.yaml")));
    }

    @Test
    void printsItsVersionAndTheDefaultJobOutsideTheCheckout() throws Exception {
        Result version = tessera("--version");
        assertEquals(0, version.code, version.err);
        assertTrue(version.out.startsWith("tessera " + System.getProperty("tessera.version")), version.out);
        assertEquals("", version.err, "the incubator warning is filtered, nothing else is printed");

        Result defaults = tessera("train", "--print-config");
        assertEquals(0, defaults.code, defaults.err);
        assertTrue(defaults.out.contains("model:") && defaults.out.contains("optimizer:"), defaults.out);
        Result fromConf = tessera("train", "--config", home.resolve("conf/tessera.yaml").toString(), "--print-config");
        assertEquals(0, fromConf.code, fromConf.err);
        assertEquals(defaults.out, fromConf.out, "conf/tessera.yaml is the built-in defaults");
    }

    @Test
    void trainsATinyModelAndExportsIt() throws Exception {
        Path run = tmp.resolve("run");
        List<String> args = new ArrayList<>(List.of("train", "--out", run.toString()));
        for (String set : List.of("model.d_model=16", "model.n_layers=2", "model.n_heads=2", "model.d_ff=32",
                "model.n_experts=4", "model.top_k=2", "model.moe_every=2", "model.expert_d_ff=16", "train.steps=3",
                "train.batch_size=2", "train.seq_len=16", "optimizer.warmup_steps=1", "eval.every=0", "mesh.dp=1")) {
            args.addAll(List.of("--set", set));
        }
        Result train = tessera(args.toArray(String[]::new));
        assertEquals(0, train.code, train.err);
        assertTrue(Files.isDirectory(run.resolve("checkpoints/step-0000003")), train.out);

        Path hf = tmp.resolve("hf");
        Result export = tessera("export", "--checkpoint", run.toString(), "--out", hf.toString());
        assertEquals(0, export.code, export.err);
        for (String file : List.of("config.json", "model.safetensors.index.json", "model-00001-of-00001.safetensors",
                "tokenizer.json")) {
            assertTrue(Files.isRegularFile(hf.resolve(file)), "the export lacks " + file);
        }

        Result refused = tessera("export", "--checkpoint", tmp.resolve("nowhere").toString(), "--out", hf.toString());
        assertEquals(2, refused.code, refused.err);
        assertEquals(1, refused.err.lines().count(), refused.err);
    }

    record Result(int code, String out, String err) {
    }

    private static Result tessera(String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of(home.resolve("bin/tessera").toString()));
        command.addAll(List.of(args));
        return run(tmp, command);
    }

    /**
     * Runs {@code command} in {@code dir}, reading its stdout and stderr to their ends (the launcher's stderr filter
     * may outlive java by a moment); past the deadline it and its children are killed and the test fails.
     */
    /**
     * The quick-start program (examples/QuickStart) as it is, started by {@code bin/tessera example} with
     * {@code TESSERA_CLUSTER} naming a cluster file: its workers start as the cluster file's (with its JVM options),
     * their lines prefixed with rank and host.
     */
    @Test
    void theQuickStartProgramTrainsOnAClusterFileUnchanged() throws Exception {
        Path cluster = Files.writeString(tmp.resolve("local-cluster.yaml"),
                "jvm_options: [-XX:+PrintCommandLineFlags]\nhosts:\n  here: {local: true, workers: 2}\n");
        Path run = tmp.resolve("cluster-run");
        List<String> command = new ArrayList<>(List.of(home.resolve("bin/tessera").toString(), "example",
                "QuickStart", run.toString()));
        command.addAll(List.of("train.steps=4", "optimizer.warmup_steps=1", "train.batch_size=4", "train.seq_len=32",
                "eval.every=0", "eval.batches=1", "checkpoint.every=0", "model.d_model=32", "model.n_layers=2"));
        Result result = run(tmp, command, Map.of("TESSERA_CLUSTER", cluster.toString()));
        assertEquals(0, result.code, result.out + result.err);
        // The workers' own lines (the JVM flags the cluster file asked them to print), prefixed by its launcher.
        assertTrue(result.err.contains("[rank 0@here] -XX:") && result.err.contains("[rank 1@here] -XX:"), result.err);
        assertTrue(Files.readString(run.resolve("config.yaml")).contains("launcher: cluster"), "config.yaml");
        assertTrue(result.out.contains("trained 4 steps"), result.out);
    }

    static Result run(Path dir, List<String> command) throws Exception {
        return run(dir, command, Map.of());
    }

    /** {@link #run(Path, List)} with {@code extraEnv} in the command's environment. */
    static Result run(Path dir, List<String> command, Map<String, String> extraEnv) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile());
        Map<String, String> env = pb.environment();
        env.putAll(extraEnv);
        env.put("TESSERA_JAVACPP_CACHE", System.getProperty("tessera.javacpp.cache"));
        env.put("TESSERA_JAVA_OPTS", "-Xmx1g");
        env.put("OMP_NUM_THREADS", "1");
        Process p = pb.start();
        List<ProcessHandle> started = new ArrayList<>();
        try {
            CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> read(p.getInputStream()));
            CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> read(p.getErrorStream()));
            p.descendants().forEach(started::add);
            if (!p.waitFor(COMMAND_DEADLINE_S, TimeUnit.SECONDS)) {
                fail(String.join(" ", command) + " did not finish in " + COMMAND_DEADLINE_S + " s");
            }
            return new Result(p.exitValue(), out.get(60, TimeUnit.SECONDS), err.get(60, TimeUnit.SECONDS));
        } finally {
            p.descendants().forEach(started::add);
            started.forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            p.waitFor(30, TimeUnit.SECONDS);
        }
    }

    private static String read(InputStream in) {
        try (in) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
