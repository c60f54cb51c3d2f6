package dev.tessera.coordinator.run;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.worker.train.StepMetrics;
import dev.tessera.worker.train.TrainingListener;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Train and validation losses by step, kept for the loss plot. */
public final class LossHistory implements TrainingListener {

    /** One point of a curve. */
    public record Point(long step, double loss) {
    }

    private final List<Point> train = new ArrayList<>();
    private final List<Point> validation = new ArrayList<>();

    /** Rebuilds the history from a metrics.jsonl, so a resumed run plots its whole curve. */
    public static LossHistory readMetrics(Path metricsJsonl) {
        LossHistory history = new LossHistory();
        if (!Files.exists(metricsJsonl)) {
            return history;
        }
        try {
            for (String line : Files.readAllLines(metricsJsonl, StandardCharsets.UTF_8)) {
                JsonNode node = MetricsWriter.parseOrNull(line);
                if (node == null || !node.path("step").canConvertToLong()) {
                    continue;
                }
                long step = node.path("step").asLong();
                if (node.path("loss").isNumber()) {
                    history.train.add(new Point(step, node.path("loss").asDouble()));
                }
                if (node.path("eval_loss").isNumber()) {
                    history.validation.add(new Point(step, node.path("eval_loss").asDouble()));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + metricsJsonl, e);
        }
        return history;
    }

    @Override
    public synchronized void onStep(StepMetrics metrics) {
        train.add(new Point(metrics.step(), metrics.loss()));
    }

    @Override
    public synchronized void onEval(long step, double evalLoss) {
        validation.add(new Point(step, evalLoss));
    }

    public synchronized List<Point> train() {
        return List.copyOf(train);
    }

    public synchronized List<Point> validation() {
        return List.copyOf(validation);
    }
}
