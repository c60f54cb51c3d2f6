package dev.tessera.coordinator.run;

import com.fasterxml.jackson.databind.SerializationFeature;
import dev.tessera.worker.io.AtomicFiles;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.OptionalDouble;

/** summary.json, written atomically so a reader (or a crash) never sees half a summary. */
public final class SummaryWriter {

    private SummaryWriter() {
    }

    public static void write(Path file, RunSummary s) {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("steps", s.steps());
        json.put("tokens", s.tokens());
        json.put("final_loss", MetricsWriter.finiteOrNull(s.finalLoss()));
        json.put("eval_loss", orNull(s.evalLoss()));
        json.put("entropy_floor", orNull(s.entropyFloor()));
        json.put("unigram_entropy", orNull(s.unigramEntropy()));
        json.put("tokens_per_s", MetricsWriter.finiteOrNull(s.tokensPerSecond()));
        json.put("wall_s", MetricsWriter.finiteOrNull(s.wallSeconds()));
        json.put("restarts", s.restarts());
        json.put("params", s.params());
        json.put("state_bytes", s.stateBytes());
        Map<String, Object> memory = new LinkedHashMap<>();
        memory.put("param_bytes", s.paramBytes() < 0 ? null : s.paramBytes());
        memory.put("grad_bytes", s.gradBytes() < 0 ? null : s.gradBytes());
        memory.put("state_bytes", s.stateBytes());
        memory.put("peak_rss_bytes", s.peakRssBytes() < 0 ? null : s.peakRssBytes());
        json.put("memory", memory);
        json.put("blas", s.blas() == null ? null : s.blas().toMap());
        json.put("config", s.config());
        try {
            byte[] bytes = MetricsWriter.JSON.writer().with(SerializationFeature.INDENT_OUTPUT)
                    .writeValueAsBytes(json);
            AtomicFiles.writeBytes(file, bytes);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    private static Double orNull(OptionalDouble value) {
        return value.isPresent() ? MetricsWriter.finiteOrNull(value.getAsDouble()) : null;
    }
}
