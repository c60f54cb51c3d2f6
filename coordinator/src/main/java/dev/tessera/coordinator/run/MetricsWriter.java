package dev.tessera.coordinator.run;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.worker.io.AtomicFiles;
import dev.tessera.worker.model.MoeStats;
import dev.tessera.worker.train.StepMetrics;
import dev.tessera.worker.train.TrainingListener;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * metrics.jsonl: one JSON object per line, {@code {"step","loss","aux_loss","lr","grad_norm","tokens_per_s",
 * "step_s","comm_wait_s","attention_comm_wait_s","wire_bytes"}} per optimizer step (with {@code "moe": [{"layer","load","dropped","aux_loss","z_loss","all_to_all_bytes","all_to_all_wait_s"}]} for a
 * model with MoE layers, and {@code "lgreco": {layer: setting}} on a step where a new L-GreCo choice comes into
 * force) and {@code {"step","eval_loss"}} per evaluation. Each line is
 * flushed at once so {@code tail -f} and a crash both see whole lines. Non-finite numbers are written as null (JSON has no NaN).
 */
public final class MetricsWriter implements TrainingListener, AutoCloseable {

    static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final BufferedWriter out;

    private MetricsWriter(Path file, BufferedWriter out) {
        this.file = file;
        this.out = out;
    }

    /** Opens {@code file} for appending, creating it if needed. */
    public static MetricsWriter append(Path file) {
        try {
            return new MetricsWriter(file, Files.newBufferedWriter(file, StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND, StandardOpenOption.WRITE));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open " + file, e);
        }
    }

    /**
     * For a resume from the checkpoint at {@code lastKeptStep}: drops lines of later steps (they will be
     * trained again), then appends. Unparseable lines (a torn last line after a crash) are dropped too.
     */
    public static MetricsWriter resumeAfter(Path file, long lastKeptStep) {
        try {
            if (Files.exists(file)) {
                List<String> kept = new ArrayList<>();
                for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                    JsonNode node = parseOrNull(line);
                    if (node != null && node.path("step").canConvertToLong()
                            && node.path("step").asLong() <= lastKeptStep) {
                        kept.add(line);
                    }
                }
                String content = kept.isEmpty() ? "" : String.join("\n", kept) + "\n";
                AtomicFiles.writeBytes(file, content.getBytes(StandardCharsets.UTF_8));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot rewrite " + file + " for resume", e);
        }
        return append(file);
    }

    public Path file() {
        return file;
    }

    @Override
    public void onStep(StepMetrics m) {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("step", m.step());
        line.put("loss", finiteOrNull(m.loss()));
        line.put("aux_loss", finiteOrNull(m.auxLoss()));
        line.put("lr", finiteOrNull(m.lr()));
        line.put("grad_norm", finiteOrNull(m.gradNorm()));
        line.put("tokens_per_s", finiteOrNull(m.tokensPerSecond()));
        line.put("step_s", finiteOrNull(m.stepSeconds()));
        line.put("comm_wait_s", finiteOrNull(m.commWaitSeconds()));
        line.put("attention_comm_wait_s", finiteOrNull(m.attentionWaitSeconds()));
        line.put("wire_bytes", m.wireBytes());
        if (!m.compressionChoice().isEmpty()) {
            line.put("lgreco", m.compressionChoice());
        }
        if (m.moe().layerCount() > 0) {
            line.put("moe", moeLayers(m.moe()));
        }
        writeLine(line);
    }

    /** Per MoE layer: its block, the expert loads, the fraction of assignments dropped, the aux and z losses. */
    private static List<Map<String, Object>> moeLayers(MoeStats moe) {
        List<Map<String, Object>> layers = new ArrayList<>();
        for (int i = 0; i < moe.layerCount(); i++) {
            Map<String, Object> layer = new LinkedHashMap<>();
            layer.put("layer", moe.block(i));
            List<Object> load = new ArrayList<>();
            for (int e = 0; e < moe.experts(); e++) {
                load.add(finiteOrNull(moe.load(i, e)));
            }
            layer.put("load", load);
            layer.put("dropped", finiteOrNull(moe.dropped(i)));
            layer.put("aux_loss", finiteOrNull(moe.aux(i)));
            layer.put("z_loss", finiteOrNull(moe.zLoss(i)));
            layer.put("all_to_all_bytes", (long) moe.allToAllBytes(i));
            layer.put("all_to_all_wait_s", finiteOrNull(moe.allToAllWaitSeconds(i)));
            layers.add(layer);
        }
        return layers;
    }

    @Override
    public void onEval(long step, double evalLoss) {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("step", step);
        line.put("eval_loss", finiteOrNull(evalLoss));
        writeLine(line);
    }

    @Override
    public void close() {
        try {
            out.close();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot close " + file, e);
        }
    }

    private synchronized void writeLine(Map<String, Object> line) {
        try {
            out.write(JSON.writeValueAsString(line));
            out.write('\n');
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    static Double finiteOrNull(double value) {
        return Double.isFinite(value) ? value : null;
    }

    static JsonNode parseOrNull(String line) {
        try {
            return line.isBlank() ? null : JSON.readTree(line);
        } catch (IOException e) {
            return null;
        }
    }
}
