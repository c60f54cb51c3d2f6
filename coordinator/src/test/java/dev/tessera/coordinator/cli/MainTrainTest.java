package dev.tessera.coordinator.cli;

import dev.tessera.comm.UserInputException;
import dev.tessera.coordinator.TrainRequest;
import dev.tessera.coordinator.config.JobConfigLoader;
import dev.tessera.coordinator.run.RunDirectory;
import dev.tessera.coordinator.run.RunSummary;
import dev.tessera.worker.checkpoint.CheckpointWriter;
import dev.tessera.worker.job.JobConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MainTrainTest {

    @TempDir
    Path tmp;

    private final AtomicReference<JobConfig> seenConfig = new AtomicReference<>();
    private final AtomicReference<RunDirectory> seenDir = new AtomicReference<>();
    private final AtomicReference<Path> seenResume = new AtomicReference<>();

    /** What training does in these tests: note what it was given, train nothing. */
    private RunSummary recordTraining(TrainRequest request) {
        seenConfig.set(request.job());
        seenDir.set(request.directory());
        seenResume.set(request.resumeOrNull());
        return summaryOf(request);
    }

    /** The summary of a run that trained nothing. */
    static RunSummary summaryOf(TrainRequest request) {
        return new RunSummary(0, 0, Double.NaN, OptionalDouble.empty(), OptionalDouble.empty(),
                OptionalDouble.empty(), 0, 0, 0, 0, request.job().toMap());
    }

    /** A complete checkpoint without tensors: enough for the CLI, which only verifies it and reads its step. */
    static Path emptyCheckpoint(Path run, long step) {
        CheckpointWriter w = CheckpointWriter.stage(run, step);
        w.writeConfig(JobConfig.defaults().toModelConfig(), DataType.FLOAT);
        w.writeModelIndex(List.of());
        w.writeTrainerState(Map.of("step", step));
        return w.commit();
    }

    @Test
    void trainResolvesConfigCreatesRunDirectoryAndCallsTheAction() throws Exception {
        Path config = tmp.resolve("job.yaml");
        Files.writeString(config, "model:\n  d_model: 64\ntrain:\n  steps: 80\n");
        Path out = tmp.resolve("run1");

        CliRunner r = CliRunner.training(this::recordTraining, "train", "--config", config.toString(), "--set", "train.steps=190",
                "--set", "optimizer.lr=1e-3", "--out", out.toString());

        assertEquals(0, r.exitCode(), r.err());
        assertEquals("", r.err());
        JobConfig job = seenConfig.get();
        assertEquals(64, job.model().dModel());
        assertEquals(190, job.train().steps());
        assertEquals(1e-3, job.optimizer().lr());
        assertEquals(out.toString(), job.out());
        assertEquals(out, seenDir.get().root());
        assertNull(seenResume.get());
        assertEquals(job, JobConfigLoader.load(out.resolve(RunDirectory.CONFIG), List.of()),
                "config.yaml holds the resolved job");
    }

    @Test
    void nonEmptyOutIsRefusedUnlessResuming() throws Exception {
        Path out = tmp.resolve("busy");
        Files.createDirectories(out);
        Files.writeString(out.resolve("something"), "x");

        CliRunner r = CliRunner.training(this::recordTraining, "train", "--out", out.toString());

        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("output directory " + out + " exists and is not empty"), r.err());
        assertTrue(r.err().contains("--resume"), r.err());
        assertNull(seenConfig.get());
    }

    @Test
    void resumeLayersTheStoredConfigUnderNewSetsAndWritesBackIntoTheRun() {
        Path run = tmp.resolve("run");
        assertEquals(0, CliRunner.training(this::recordTraining, "train", "--out", run.toString(), "--set",
                "model.d_model=64", "--set", "train.steps=100").exitCode());
        Path checkpoint = emptyCheckpoint(run, 50);

        CliRunner r = CliRunner.training(this::recordTraining, "train", "--resume", checkpoint.toString(), "--set",
                "train.steps=200");

        assertEquals(0, r.exitCode(), r.err());
        assertEquals(64, seenConfig.get().model().dModel(), "kept from the stored config");
        assertEquals(200, seenConfig.get().train().steps(), "overridden on resume");
        assertEquals(run.toAbsolutePath(), seenDir.get().root().toAbsolutePath());
        assertTrue(seenDir.get().isResume());
        assertEquals(checkpoint, seenResume.get());
    }

    @Test
    void printConfigShowsTheResolvedYamlAndCreatesNothing() {
        Path out = tmp.resolve("never");
        CliRunner r = CliRunner.run("train", "--set", "train.steps=177", "--out", out.toString(), "--print-config");
        assertEquals(0, r.exitCode(), r.err());
        JobConfig printed = JobConfigLoader.fromYaml(r.out(), "stdout");
        assertEquals(177, printed.train().steps());
        assertFalse(Files.exists(out));
    }

    @Test
    void failuresInsideTrainingExitOneWithOneLine() {
        CliRunner r = CliRunner.training(request -> {
            throw new IllegalStateException("worker 3 died");
        }, "train", "--out", tmp.resolve("a").toString());
        assertEquals(1, r.exitCode());
        assertEquals("tessera: IllegalStateException: worker 3 died (set TESSERA_DEBUG=1 for the stack trace)",
                r.err().strip());
    }

    @Test
    void userErrorsWrappedByTrainingStillExitTwo() {
        CliRunner r = CliRunner.training(request -> {
            throw new RuntimeException("rank 0 failed", new UserInputException("data.path 'x': empty file"));
        }, "train", "--out", tmp.resolve("b").toString());
        assertEquals(2, r.exitCode());
        assertEquals("tessera: data.path 'x': empty file", r.err().strip());
    }

    @Test
    void debugPrintsTheStackTrace() {
        System.setProperty("tessera.debug", "true");
        try {
            CliRunner r = CliRunner.training(request -> {
                throw new IllegalStateException("boom");
            }, "train", "--out", tmp.resolve("d").toString());
            assertEquals(1, r.exitCode());
            assertTrue(r.err().startsWith("tessera: IllegalStateException: boom"), r.err());
            assertTrue(r.err().contains("\tat "), r.err());
        } finally {
            System.clearProperty("tessera.debug");
        }
    }

    @Test
    void benchModelParsesItsOptions() {
        AtomicReference<String> seen = new AtomicReference<>();
        BenchModelAction record = (preset, steps, recompute, json) -> {
            seen.set(preset + " " + steps + " " + recompute.every() + " " + json);
            return 0;
        };
        assertEquals(0, CliRunner.benching(record, "bench", "model", "--preset", "moe", "--steps", "5", "--json")
                .exitCode());
        assertEquals("MOE 5 0 true", seen.get());
        assertEquals(0, CliRunner.benching(record, "bench", "model", "--preset", "wide",
                "--activation-checkpointing", "blocks").exitCode());
        assertEquals("WIDE 20 1 false", seen.get());
        assertEquals(0, CliRunner.benching(record, "bench", "model", "--preset", "dense",
                "--activation-checkpointing", "every_k", "--recompute-every", "3").exitCode());
        assertEquals("DENSE 20 3 false", seen.get());
    }

    @Test
    void helpAndVersionExitZero() {
        CliRunner help = CliRunner.run("train", "--help");
        assertEquals(0, help.exitCode());
        assertTrue(help.out().contains("--resume"), help.out());
        assertEquals(0, CliRunner.run("--version").exitCode());
    }
}
