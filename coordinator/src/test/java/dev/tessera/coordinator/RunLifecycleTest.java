package dev.tessera.coordinator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tessera.comm.MediaDriverHost;
import dev.tessera.coordinator.cli.Main;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A run's life on disk, through the CLI: resuming, retention, leftovers, and what is said about bad state. */
class RunLifecycleTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    private record Outcome(int code, String out, String err) {
    }

    /** Runs the CLI with its own streams, and with System.err captured too (training prints warnings there). */
    private static synchronized Outcome tessera(List<String> args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream errStream = new PrintStream(err, true, StandardCharsets.UTF_8);
        PrintStream systemErr = System.err;
        System.setErr(errStream);
        try {
            int code = Main.run(new PrintStream(out, true, StandardCharsets.UTF_8), errStream,
                    args.toArray(String[]::new));
            return new Outcome(code, out.toString(StandardCharsets.UTF_8), withoutLoggingNotice(err));
        } finally {
            System.setErr(systemErr);
        }
    }

    /** SLF4J announces on System.err, once per JVM, that the test class path has no logger binding. */
    private static String withoutLoggingNotice(ByteArrayOutputStream err) {
        return err.toString(StandardCharsets.UTF_8).lines().filter(l -> !l.startsWith("SLF4J: "))
                .map(l -> l + "\n").reduce("", String::concat);
    }

    private static Outcome tessera(String... args) {
        return tessera(List.of(args));
    }

    private Path trainTiny(String name, String... extra) {
        Path run = tmp.resolve(name);
        List<String> args = new ArrayList<>(TinyJob.trainArgs(extra));
        args.addAll(List.of("--out", run.toString()));
        Outcome o = tessera(args);
        assertEquals(0, o.code(), o.err());
        return run;
    }

    private static Map<String, byte[]> contents(Path dir) throws IOException {
        Map<String, byte[]> files = new TreeMap<>();
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.toList()) {
                files.put(dir.relativize(p).toString(), Files.isRegularFile(p) ? Files.readAllBytes(p) : new byte[0]);
            }
        }
        return files;
    }

    private static List<String> checkpointNames(Path run) throws IOException {
        try (Stream<Path> list = Files.list(run.resolve("checkpoints"))) {
            return list.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static Map<Long, Integer> trainRowsPerStep(Path run) throws IOException {
        Map<Long, Integer> rows = new TreeMap<>();
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode node = JSON.readTree(line);
            if (node.has("loss")) {
                rows.merge(node.get("step").asLong(), 1, Integer::sum);
            }
        }
        return rows;
    }

    @Test
    void resumingAFinishedRunSaysItIsCompleteAndChangesNothing() throws IOException {
        Path run = trainTiny("finished");
        Map<String, byte[]> before = contents(run);

        Outcome o = tessera("train", "--resume", run.toString());

        assertEquals(0, o.code(), o.err());
        assertEquals("", o.err());
        assertTrue(o.out().contains("is complete") && o.out().contains("step 8 of train.steps 8"), o.out());
        Map<String, byte[]> after = contents(run);
        assertEquals(before.keySet(), after.keySet());
        before.forEach((file, bytes) -> assertArrayEquals(bytes, after.get(file), file + " changed"));
    }

    @Test
    void aCorruptNewestCheckpointIsNamedWithItsProblemBeforeTheRunFallsBack() throws IOException {
        Path run = trainTiny("corrupt-newest");
        Path newest = run.resolve("checkpoints/step-0000008");
        Path weights = newest.resolve("model-00001-of-00001.safetensors");
        byte[] bytes = Files.readAllBytes(weights);
        bytes[bytes.length - 2] ^= 0x10;
        Files.write(weights, bytes);

        Outcome o = tessera("train", "--resume", run.toString(), "--set", "train.steps=12");

        assertEquals(0, o.code(), o.err());
        List<String> lines = o.err().lines().toList();
        assertEquals(1, lines.size(), o.err());
        assertTrue(lines.get(0).contains(newest.toString()) && lines.get(0).contains("SHA-256 mismatch"), lines.get(0));
        Map<Long, Integer> rows = trainRowsPerStep(run);
        assertEquals(12, rows.size(), rows.toString());
        rows.forEach((step, count) -> assertEquals(1, count, "rows of step " + step));
        assertEquals(8, JSON.readTree(run.resolve("summary.json").toFile()).get("steps").asLong(),
                "resumed from the older checkpoint: steps 5..12");
    }

    @Test
    void retentionKeepsTheNewestAndThePeriodicCheckpointsAndLeftoversAreSweptAtStart() throws IOException {
        Path run = trainTiny("retention", "--set", "checkpoint.every=1", "--set", "checkpoint.keep_last=2",
                "--set", "checkpoint.keep_every=3");
        // Steps 1..8: the newest two (7, 8) and the newest at or before each multiple of 3 (3, 6, and 8 for 7..9).
        assertEquals(List.of("step-0000003", "step-0000006", "step-0000007", "step-0000008"), checkpointNames(run));

        Path staging = Files.createDirectories(run.resolve("checkpoints/.step-0000009.tmp-0123456789abcdef"));
        Files.writeString(staging.resolve("config.json"), "{}");
        Files.createDirectories(run.resolve("checkpoints/.step-0000001.deleting-0123456789abcdef"));
        Outcome o = tessera("train", "--resume", run.toString(), "--set", "train.steps=9");
        assertEquals(0, o.code(), o.err());
        assertEquals(List.of("step-0000003", "step-0000006", "step-0000008", "step-0000009"), checkpointNames(run));
    }

    @Test
    void nonFiniteWeightsInACheckpointExitTwoNamingTheCheckpointAndTensor() throws Exception {
        Path run = trainTiny("nan");
        Path checkpoint = run.resolve("checkpoints/step-0000004");
        String tensor = poisonFirstTensor(checkpoint.resolve("model-00001-of-00001.safetensors"));
        rehash(checkpoint, "model-00001-of-00001.safetensors");

        Outcome o = tessera("train", "--resume", checkpoint.toString(), "--out", tmp.resolve("nan-resumed").toString());

        assertEquals(2, o.code(), o.err());
        assertEquals(1, o.err().strip().lines().count(), o.err());
        assertTrue(o.err().contains(checkpoint.toString()) && o.err().contains(tensor) && o.err().contains("NaN"),
                o.err());
        assertFalse(o.err().contains("lr"), "not blamed on the learning rate: " + o.err());
    }

    @Test
    void keepLastBelowOneIsABadInput() {
        for (String value : List.of("0", "-2")) {
            Outcome o = tessera(TinyJob.trainArgs("--set", "checkpoint.keep_last=" + value,
                    "--out", tmp.resolve("k" + value).toString()));
            assertEquals(2, o.code(), o.err());
            assertEquals(1, o.err().strip().lines().count(), o.err());
            assertTrue(o.err().contains("checkpoint.keep_last must be >= 1"), o.err());
        }
        Outcome o = tessera(TinyJob.trainArgs("--set", "checkpoint.keep_every=-1", "--out", tmp.resolve("e").toString()));
        assertEquals(2, o.code(), o.err());
        assertTrue(o.err().contains("checkpoint.keep_every must be >= 0"), o.err());
    }

    @Test
    void binaryDataGivenAsTextIsReportedInOneLine() throws IOException {
        byte[] noise = new byte[20_000];
        new java.util.Random(5).nextBytes(noise);
        Path binary = Files.write(tmp.resolve("weights.bin"), noise);
        Outcome o = tessera(TinyJob.trainArgs("--set", "data.source=text", "--set", "data.path=" + binary,
                "--set", "train.steps=2", "--out", tmp.resolve("binary").toString()));
        assertEquals(0, o.code(), o.err());
        List<String> lines = o.err().lines().toList();
        assertEquals(1, lines.size(), o.err());
        assertTrue(lines.get(0).contains(binary.toString()) && lines.get(0).contains("invalid UTF-8"), lines.get(0));
    }

    @Test
    void aTrainSweepsOnlyTheHostLeftoversWhoseOwnersAreGone() throws Exception {
        Process exited = new ProcessBuilder("true").start();
        exited.waitFor();
        String me = Long.toString(ProcessHandle.current().pid());
        String suffix = Long.toHexString(System.nanoTime());
        Path shm = MediaDriverHost.baseDirectory();
        Path deadDriver = Files.createDirectories(shm.resolve("tessera-job-lifecycle" + suffix + "-host"));
        Path liveDriver = Files.createDirectories(shm.resolve("tessera-job-lifecycle" + suffix + "-live"));
        Path tmpDir = Path.of(System.getProperty("java.io.tmpdir"));
        Path deadLogs = Files.createDirectories(tmpDir.resolve("tessera-workers-lifecycle" + suffix));
        try {
            Files.writeString(deadDriver.resolve("tessera-owner.pid"), exited.pid() + " " + System.currentTimeMillis());
            Files.write(deadDriver.resolve("cnc.dat"), new byte[4096]);
            Files.writeString(liveDriver.resolve("tessera-owner.pid"), me + " " + System.currentTimeMillis());
            Files.writeString(deadLogs.resolve("tessera-owner.pid"), exited.pid() + " " + System.currentTimeMillis());
            Files.writeString(deadLogs.resolve("rank0.log"), "left by a killed coordinator\n");

            trainTiny("sweeper", "--set", "train.steps=2");

            assertFalse(Files.exists(deadDriver), deadDriver + " left");
            assertFalse(Files.exists(deadLogs), deadLogs + " left");
            assertTrue(Files.exists(liveDriver), "a directory whose owner runs is kept");
        } finally {
            for (Path p : List.of(deadDriver, liveDriver, deadLogs)) {
                try (Stream<Path> walk = Files.exists(p) ? Files.walk(p) : Stream.empty()) {
                    for (Path f : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                        Files.delete(f);
                    }
                }
            }
        }
    }

    /** Writes NaN into the first element of the first tensor of a safetensors file; returns the tensor's name. */
    private static String poisonFirstTensor(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int headerLength = (int) buf.getLong(0);
        JsonNode header = JSON.readTree(new String(bytes, 8, headerLength, StandardCharsets.UTF_8));
        String name = null;
        for (var it = header.fieldNames(); it.hasNext(); ) {
            String field = it.next();
            if (!field.equals("__metadata__") && header.get(field).get("dtype").asText().equals("F32")) {
                name = field;
                break;
            }
        }
        long begin = header.get(name).get("data_offsets").get(0).asLong();
        buf.putFloat((int) (8 + headerLength + begin), Float.NaN);
        Files.write(file, bytes);
        return name;
    }

    /** Updates the manifest for a file changed on purpose, so the checkpoint is valid except for its content. */
    private static void rehash(Path checkpoint, String file) throws Exception {
        Path manifest = checkpoint.resolve("manifest.json");
        ObjectNode root = (ObjectNode) JSON.readTree(manifest.toFile());
        String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                .digest(Files.readAllBytes(checkpoint.resolve(file))));
        ((ObjectNode) root.get("files").get(file)).put("sha256", sha);
        Files.write(manifest, JSON.writeValueAsBytes(root));
    }
}
