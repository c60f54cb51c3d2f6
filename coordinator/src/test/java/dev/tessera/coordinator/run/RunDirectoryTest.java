package dev.tessera.coordinator.run;

import dev.tessera.comm.UserInputException;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.train.TrainingListener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RunDirectoryTest {

    @TempDir
    Path tmp;

    private static final LocalDateTime NOON = LocalDateTime.of(2025, 3, 4, 12, 0, 5);

    @Test
    void withoutOutRunsGetTimestampedDirectoriesThatNeverCollide() {
        Path runs = tmp.resolve("runs");
        RunDirectory first = RunDirectory.create(null, runs, NOON);
        RunDirectory second = RunDirectory.create(null, runs, NOON);
        assertEquals(runs.resolve("20250304-120005"), first.root());
        assertEquals(runs.resolve("20250304-120005-1"), second.root());
        assertFalse(first.isResume());
    }

    @Test
    void outMayBeMissingOrEmptyButNotBusy() throws Exception {
        assertTrue(Files.isDirectory(RunDirectory.create(tmp.resolve("a/b")).root()));
        Files.createDirectories(tmp.resolve("empty"));
        assertEquals(tmp.resolve("empty"), RunDirectory.create(tmp.resolve("empty")).root());
        Files.writeString(tmp.resolve("empty/x"), "1");
        UserInputException e = assertThrows(UserInputException.class,
                () -> RunDirectory.create(tmp.resolve("empty")));
        assertTrue(e.getMessage().contains("exists and is not empty"), e.getMessage());
        Files.writeString(tmp.resolve("file"), "1");
        e = assertThrows(UserInputException.class, () -> RunDirectory.create(tmp.resolve("file")));
        assertTrue(e.getMessage().contains("is not a directory"), e.getMessage());
    }

    @Test
    void resumeFindsTheRunFromItselfOrACheckpoint() throws Exception {
        RunDirectory run = RunDirectory.create(tmp.resolve("run"));
        run.writeConfig(JobConfig.defaults());
        Path checkpoint = run.checkpointDir(300);
        Files.createDirectories(checkpoint);
        assertEquals("step-0000300", checkpoint.getFileName().toString());

        RunDirectory again = RunDirectory.resume(checkpoint, null);
        assertEquals(run.root().toAbsolutePath(), again.root().toAbsolutePath());
        assertTrue(again.isResume());
        assertTrue(again.storedConfig().isPresent());

        RunDirectory elsewhere = RunDirectory.resume(run.root(), tmp.resolve("fork"));
        assertEquals(tmp.resolve("fork"), elsewhere.root());
        assertEquals(run.root().toAbsolutePath(), elsewhere.resumedFrom().orElseThrow());
    }

    @Test
    void resumeIntoANewOutCopiesTheEarlierMetrics() throws Exception {
        RunDirectory run = RunDirectory.create(tmp.resolve("run"));
        run.writeConfig(JobConfig.defaults());
        Files.writeString(run.metricsFile(), "{\"step\":1,\"loss\":5.0}\n{\"step\":2,\"loss\":4.0}\n");
        RunDirectory fork = RunDirectory.resume(run.root(), tmp.resolve("fork"));
        ProgressBar quiet = new ProgressBar(new java.io.PrintStream(java.io.OutputStream.nullOutputStream()), false,
                System::nanoTime);
        try (RunRecorder recorder = RunRecorder.open(fork, quiet, 1, JobConfig.defaults().checkpoint().retention(),
                TrainingListener.NONE)) {
            assertEquals(1, recorder.lossHistory().train().size());
        }
        assertEquals(1, Files.readAllLines(fork.metricsFile()).size());
        assertEquals(2, Files.readAllLines(run.metricsFile()).size(), "the source run is left alone");
    }
}
