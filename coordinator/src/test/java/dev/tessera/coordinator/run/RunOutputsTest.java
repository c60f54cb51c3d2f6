package dev.tessera.coordinator.run;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.worker.blas.BlasKernel;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.train.StepMetrics;
import dev.tessera.worker.train.TrainingListener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalDouble;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RunOutputsTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    private static StepMetrics step(long step, double loss) {
        return new StepMetrics(step, loss, 0.01, 3e-3, 0.8, 12_345.0, 0.2, 0.0);
    }

    @Test
    void metricsLinesAreJsonWithTheRequiredFields() throws Exception {
        Path file = tmp.resolve("metrics.jsonl");
        try (MetricsWriter w = MetricsWriter.append(file)) {
            w.onStep(step(1, 5.5));
            w.onStep(step(2, Double.NaN));
            w.onEval(2, 5.25);
        }
        List<String> lines = Files.readAllLines(file);
        assertEquals(3, lines.size());
        JsonNode first = JSON.readTree(lines.get(0));
        for (String field : List.of("step", "loss", "aux_loss", "lr", "grad_norm", "tokens_per_s")) {
            assertTrue(first.get(field).isNumber(), field + " in " + lines.get(0));
        }
        assertEquals(1, first.get("step").asLong());
        assertEquals(5.5, first.get("loss").asDouble());
        assertTrue(JSON.readTree(lines.get(1)).get("loss").isNull(), "NaN is written as null: " + lines.get(1));
        JsonNode eval = JSON.readTree(lines.get(2));
        assertEquals(2, eval.get("step").asLong());
        assertEquals(5.25, eval.get("eval_loss").asDouble());
    }

    @Test
    void resumeDropsMetricsAfterTheCheckpointAndAppends() throws Exception {
        Path file = tmp.resolve("metrics.jsonl");
        try (MetricsWriter w = MetricsWriter.append(file)) {
            for (int s = 1; s <= 5; s++) {
                w.onStep(step(s, 6 - s));
            }
        }
        Files.writeString(file, "{\"step\": 6, \"lo", java.nio.file.StandardOpenOption.APPEND); // torn by a crash
        try (MetricsWriter w = MetricsWriter.resumeAfter(file, 3)) {
            w.onStep(step(4, 1.5));
        }
        List<Long> steps = Files.readAllLines(file).stream().map(l -> parse(l).get("step").asLong()).toList();
        assertEquals(List.of(1L, 2L, 3L, 4L), steps);
        assertEquals(1.5, LossHistory.readMetrics(file).train().get(3).loss());
    }

    @Test
    void summaryIsJsonWithTheRequiredFieldsAndNoTempFileLeft() throws Exception {
        Path file = tmp.resolve("summary.json");
        JobConfig config = JobConfig.defaults();
        SummaryWriter.write(file, new RunSummary(600, 1_228_800, 1.23, OptionalDouble.of(1.3), OptionalDouble.of(1.1),
                OptionalDouble.empty(), 45_000.5, 27.3, 1_234_567, 9_876_543, config.toMap()));

        JsonNode s = JSON.readTree(file.toFile());
        assertEquals(600, s.get("steps").asLong());
        assertEquals(1_228_800, s.get("tokens").asLong());
        assertEquals(1.23, s.get("final_loss").asDouble());
        assertEquals(1.3, s.get("eval_loss").asDouble());
        assertEquals(1.1, s.get("entropy_floor").asDouble());
        assertTrue(s.get("unigram_entropy").isNull());
        assertEquals(45_000.5, s.get("tokens_per_s").asDouble());
        assertEquals(27.3, s.get("wall_s").asDouble());
        assertEquals(1_234_567, s.get("params").asLong());
        assertEquals(9_876_543, s.get("state_bytes").asLong());
        assertEquals(128, s.get("config").get("model").get("d_model").asInt());
        assertEquals("adamw", s.get("config").get("optimizer").get("name").asText());
        try (Stream<Path> files = Files.list(tmp)) {
            assertEquals(List.of(file), files.toList(), "only summary.json: the temp file was renamed");
        }
    }

    @Test
    void summaryRecordsTheBlasKernelAndWhoChoseIt() throws Exception {
        Path file = tmp.resolve("summary.json");
        SummaryWriter.write(file, new RunSummary(4, 512, 1.0, OptionalDouble.empty(), OptionalDouble.empty(),
                OptionalDouble.empty(), 1e4, 1.0, 1000, 8000, 4000, 4000, 900_000_000,
                new BlasKernel("SkylakeX", "cpu flags"), JobConfig.defaults().toMap(), 0));
        assertEquals(900_000_000, JSON.readTree(file.toFile()).get("memory").get("peak_rss_bytes").asLong());
        JsonNode blas = JSON.readTree(file.toFile()).get("blas");
        assertEquals("SkylakeX", blas.get("kernel").asText());
        assertEquals("cpu flags", blas.get("chosen_by").asText());

        SummaryWriter.write(file, new RunSummary(4, 512, 1.0, OptionalDouble.empty(), OptionalDouble.empty(),
                OptionalDouble.empty(), 1e4, 1.0, 1000, 8000, JobConfig.defaults().toMap()));
        assertTrue(JSON.readTree(file.toFile()).get("blas").isNull(), "unknown: null, not a guess");
        assertTrue(JSON.readTree(file.toFile()).get("memory").get("peak_rss_bytes").isNull());
    }

    @Test
    void lossPlotIsAPng() throws Exception {
        LossHistory history = new LossHistory();
        for (int s = 1; s <= 300; s++) {
            history.onStep(step(s, 5.5 * Math.exp(-s / 80.0) + 1.0 + 0.05 * Math.sin(s)));
            if (s % 50 == 0) {
                history.onEval(s, 5.5 * Math.exp(-s / 80.0) + 1.1);
            }
        }
        Path png = tmp.resolve("loss.png");
        LossPlot.write(png, history, "Tessera: 300 steps");

        byte[] bytes = Files.readAllBytes(png);
        assertTrue(bytes.length > 1000, "size " + bytes.length);
        byte[] signature = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        assertArrayEquals(signature, Arrays.copyOf(bytes, 8));
        BufferedImage image = ImageIO.read(png.toFile());
        assertEquals(LossPlot.WIDTH, image.getWidth());
        assertEquals(LossPlot.HEIGHT, image.getHeight());
    }

    @Test
    void lossPlotOfAnEmptyHistoryStillWrites() throws Exception {
        Path png = tmp.resolve("empty.png");
        LossPlot.write(png, new LossHistory(), "no steps");
        assertTrue(Files.size(png) > 0);
    }

    @Test
    void recorderWritesEveryOutput() throws Exception {
        RunDirectory dir = RunDirectory.create(tmp.resolve("run"));
        dir.writeConfig(JobConfig.defaults());
        java.io.ByteArrayOutputStream console = new java.io.ByteArrayOutputStream();
        ProgressBar bar = new ProgressBar(new java.io.PrintStream(console, true), false, System::nanoTime);
        try (RunRecorder recorder = RunRecorder.open(dir, bar, 0, JobConfig.defaults().checkpoint().retention(),
                TrainingListener.NONE)) {
            recorder.listener().onStart(1, 4);
            for (int s = 1; s <= 4; s++) {
                recorder.listener().onStep(step(s, 5 - s));
            }
            recorder.listener().onEval(4, 1.5);
            recorder.finish(new RunSummary(4, 4 * 16 * 128, 1.0, OptionalDouble.of(1.5), OptionalDouble.empty(),
                    OptionalDouble.empty(), 1e4, 1.0, 1000, 8000, JobConfig.defaults().toMap()), "test run");
        }
        for (Path p : List.of(dir.configFile(), dir.metricsFile(), dir.summaryFile(), dir.lossPlotFile())) {
            assertTrue(Files.size(p) > 0, p + " written");
        }
        assertEquals(5, Files.readAllLines(dir.metricsFile()).size());
        assertEquals(4, recorder4Steps(dir));
    }

    private static int recorder4Steps(RunDirectory dir) {
        return LossHistory.readMetrics(dir.metricsFile()).train().size();
    }

    private static JsonNode parse(String line) {
        try {
            return JSON.readTree(line);
        } catch (Exception e) {
            throw new AssertionError(line, e);
        }
    }
}
