package dev.tessera.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.coordinator.cli.Main;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bad input that only the real training path can see (data files, checkpoints): exit 2, one line naming the
 * file and what is wrong. Config-level bad input is covered by MainBadInputTest.
 */
class BadInputEndToEndTest {

    @TempDir
    static Path tmp;
    static Path run;

    @BeforeAll
    static void trainOnce() {
        run = tmp.resolve("run");
        assertEquals(0, Main.run(LocalTrainingTest.args(TinyJob.trainArgs("--out", run.toString()))));
    }

    private record Outcome(int code, String err) {
    }

    private static Outcome train(String... extra) {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8), extra);
        return new Outcome(code, err.toString(StandardCharsets.UTF_8).strip());
    }

    private static void assertUserError(Outcome outcome, String... fragments) {
        assertEquals(2, outcome.code(), outcome.err());
        assertEquals(1, outcome.err().lines().count(), "one line: " + outcome.err());
        for (String fragment : fragments) {
            assertTrue(outcome.err().contains(fragment), "'" + fragment + "' missing from: " + outcome.err());
        }
    }

    private Path copyOfCheckpoint(String name) throws IOException {
        Path source = run.resolve("checkpoints/step-0000004");
        Path copy = tmp.resolve(name).resolve("checkpoints/step-0000004");
        Files.createDirectories(copy.resolve("optimizer"));
        try (var files = Files.walk(source)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                Files.copy(f, copy.resolve(source.relativize(f).toString()));
            }
        }
        Files.copy(run.resolve("config.yaml"), tmp.resolve(name).resolve("config.yaml"));
        return copy;
    }

    @Test
    void emptyDataFile() throws IOException {
        Path empty = Files.createFile(tmp.resolve("empty.txt"));
        assertUserError(train(withTiny("--set", "data.source=text", "--set", "data.path=" + empty,
                "--out", tmp.resolve("e").toString())), "empty.txt", "empty");
    }

    @Test
    void dataFileTooShortForOneSequence() throws IOException {
        Path small = Files.writeString(tmp.resolve("small.txt"), "just a few bytes");
        assertUserError(train(withTiny("--set", "data.source=text", "--set", "data.path=" + small,
                "--out", tmp.resolve("s").toString())), "seq_len 16");
    }

    @Test
    void corruptedCheckpoint() throws IOException {
        Path checkpoint = copyOfCheckpoint("corrupt");
        Path weights = checkpoint.resolve("model-00001-of-00001.safetensors");
        byte[] bytes = Files.readAllBytes(weights);
        bytes[bytes.length - 3] ^= 0x55;
        Files.write(weights, bytes);
        assertUserError(train("train", "--resume", checkpoint.toString(), "--out", tmp.resolve("c").toString()),
                "model-00001-of-00001.safetensors", "SHA-256");
    }

    @Test
    void checkpointWithoutManifest() throws IOException {
        Path checkpoint = copyOfCheckpoint("partial");
        Files.delete(checkpoint.resolve("manifest.json"));
        assertUserError(train("train", "--resume", checkpoint.toString(), "--out", tmp.resolve("p").toString()),
                "manifest.json");
    }

    @Test
    void resumeWithADifferentModelShape() {
        assertUserError(train("train", "--resume", run.resolve("checkpoints/step-0000004").toString(),
                "--set", "model.d_ff=48", "--out", tmp.resolve("m").toString()), "checkpoint", "model");
    }

    @Test
    void resumeAnAdamWCheckpointWithAnotherOptimizer() {
        assertUserError(train("train", "--resume", run.resolve("checkpoints/step-0000004").toString(),
                "--set", "optimizer.name=came", "--out", tmp.resolve("o").toString()), "checkpoint",
                "lacks", "optimizer state came.", "different optimizer");
    }

    private static String[] withTiny(String... extra) {
        List<String> args = new ArrayList<>(TinyJob.trainArgs(extra));
        return args.toArray(String[]::new);
    }
}
