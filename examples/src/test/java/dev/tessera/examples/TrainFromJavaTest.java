package dev.tessera.examples;

import dev.tessera.coordinator.TrainResult;
import dev.tessera.coordinator.run.RunSummary;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainFromJavaTest {

    @TempDir
    Path tmp;

    /** The example as a user runs it, shortened: two worker processes, its own progress lines, a final checkpoint. */
    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void theExampleTrainsOnTwoWorkersAndReportsThroughItsListener() throws Exception {
        ByteArrayOutputStream progress = new ByteArrayOutputStream();
        TrainResult result = TrainFromJava.train(tmp.resolve("run"), 30,
                new PrintStream(progress, true, StandardCharsets.UTF_8));

        RunSummary summary = result.summary().orElseThrow();
        String lines = progress.toString(StandardCharsets.UTF_8);
        assertEquals(30, summary.steps());
        assertTrue(summary.finalLoss() < Math.log(256), "the model learned nothing: " + summary.finalLoss());
        assertTrue(lines.contains("step   25  loss ") && lines.contains("step   30  loss "), lines);
        assertTrue(lines.contains("step   30  eval loss "), lines);
        assertEquals(result.runDirectory().resolve("checkpoints/step-0000030"), result.finalCheckpoint().orElseThrow());
        assertTrue(Files.isRegularFile(result.runDirectory().resolve("summary.json")));
    }
}
