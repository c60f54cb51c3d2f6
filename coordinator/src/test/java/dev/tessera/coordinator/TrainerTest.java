package dev.tessera.coordinator;

import dev.tessera.comm.UserInputException;
import dev.tessera.coordinator.config.JobConfigLoader;
import dev.tessera.coordinator.run.RunSummary;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.job.OptimizerKind;
import dev.tessera.worker.train.StepMetrics;
import dev.tessera.worker.train.TrainingListener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainerTest {

    @TempDir
    Path tmp;

    @Test
    void theBuilderAndTheYamlAreTwoViewsOfOneSpec() throws Exception {
        Path yaml = tmp.resolve("job.yaml");
        Files.writeString(yaml, "model:\n  d_model: 96\noptimizer:\n  name: came\n  lr: 0.002\nmesh:\n  dp: 2\n");
        JobConfig fromYaml = JobConfigLoader.load(yaml, List.of());

        JobConfig fromBuilder = Trainer.builder().set("model.d_model", 96).set("optimizer.name", OptimizerKind.CAME)
                .set("optimizer.lr", 0.002f).set("mesh.dp", 2).build().job();
        JobConfig mixed = Trainer.builder().config(yaml).set("train.steps=777").build().job();

        assertEquals(fromYaml, fromBuilder);
        assertEquals(777, mixed.train().steps());
        assertEquals(96, mixed.model().dModel(), "the file's keys stay under later sets");
        assertEquals(fromYaml, Trainer.builder().job(fromYaml).build().job(), "a typed spec passes through whole");
    }

    @Test
    void badKeysAndValuesAreNamedAsTheYamlWouldNameThem() {
        UserInputException unknown = assertThrows(UserInputException.class,
                () -> Trainer.builder().set("train.stepz", 5).build());
        assertTrue(unknown.getMessage().startsWith("set(\"train.stepz\", 5): unknown key 'train.stepz' (did you mean"
                + " 'train.steps'?)"), unknown.getMessage());
        UserInputException type = assertThrows(UserInputException.class,
                () -> Trainer.builder().set("train.steps", "many").build());
        assertTrue(type.getMessage().contains("train.steps must be an integer (got string 'many')"),
                type.getMessage());
        UserInputException javaType = assertThrows(UserInputException.class,
                () -> Trainer.builder().set("train.steps", new StringBuilder("8")));
        assertTrue(javaType.getMessage().contains("train.steps cannot hold a StringBuilder"), javaType.getMessage());
    }

    /** The listener hears what metrics.jsonl records, and the result points at the run's files. */
    @Test
    void fitTrainsAndReportsToListenersAndReturnsTheRunsResult() throws Exception {
        List<StepMetrics> steps = new ArrayList<>();
        List<Long> evals = new ArrayList<>();
        List<Path> checkpoints = new ArrayList<>();
        TrainingListener listener = new TrainingListener() {
            @Override
            public void onStep(StepMetrics metrics) {
                steps.add(metrics);
            }

            @Override
            public void onEval(long step, double evalLoss) {
                evals.add(step);
            }

            @Override
            public void onCheckpoint(long step, Path directory) {
                checkpoints.add(directory);
            }
        };
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        Trainer.Builder builder = Trainer.builder().out(tmp.resolve("run")).listener(listener)
                .log(new PrintStream(log, true, StandardCharsets.UTF_8));
        TinyJob.sets().forEach(builder::set);

        TrainResult result = builder.build().fit();

        RunSummary summary = result.summary().orElseThrow();
        assertEquals(8, summary.steps());
        assertEquals(8, steps.size());
        assertEquals(steps.get(7).loss(), summary.finalLoss(), 0.0);
        assertEquals(List.of(4L, 8L), evals);
        assertEquals(tmp.resolve("run").toAbsolutePath(), result.runDirectory().toAbsolutePath());
        assertEquals(List.of(result.runDirectory().resolve("checkpoints/step-0000004"),
                result.runDirectory().resolve("checkpoints/step-0000008")), checkpoints);
        assertEquals(checkpoints.get(1), result.finalCheckpoint().orElseThrow());
        assertTrue(Files.isRegularFile(result.runDirectory().resolve("summary.json")));
        assertTrue(log.toString(StandardCharsets.UTF_8).contains("done: 8 steps"), log.toString());

        TrainResult again = Trainer.builder().resume(result.runDirectory()).log(new PrintStream(log)).build().fit();
        assertFalse(again.summary().isPresent(), "a complete run trains nothing");
        assertEquals(result.finalCheckpoint(), again.finalCheckpoint());
    }
}
