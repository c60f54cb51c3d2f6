package dev.tessera.worker.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.optimizers.AdamW;
import dev.tessera.optimizers.AdamWConfig;
import dev.tessera.optimizers.Adafactor;
import dev.tessera.optimizers.AdafactorConfig;
import dev.tessera.optimizers.CAME;
import dev.tessera.optimizers.CAMEConfig;
import dev.tessera.optimizers.ParamSpan;
import dev.tessera.worker.bench.ModelPreset;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.Transformer;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Optimizer state of the "wide" preset (d_model 512, d_ff 1376, vocab 256, 4 layers) in fp32: Adafactor keeps
 * O(n+m) per matrix (ALGORITHMS.md §1), CAME adds one full momentum and a second pair of vectors (§2).
 */
class OptimizerStateSizeTest {

    @Test
    void adafactorStateOfTheWidePresetIsUnderFivePercentOfAdamW() {
        ModelConfig wide = ModelPreset.WIDE.config();
        ParameterStore store = new Transformer(wide, DataType.FLOAT, 1, 1).parameters();
        List<ParamSpan> spans = store.spans();
        long numel = store.numel();
        long rowsPlusCols = 0;
        long vectors = 0;
        for (ParamSpan s : spans) {
            long[] shape = s.shape();
            if (shape.length >= 2) {
                rowsPlusCols += s.numel() / shape[shape.length - 1] + s.numel() / shape[shape.length - 2];
            } else {
                vectors += s.numel();
            }
        }
        // The preset's shapes, counted by hand: 2 x [256,512], per layer 4 x [512,512] + 2 x [1376,512]
        // + [512,1376], and 9 norm gains of 512.
        assertEquals(2 * (256 + 512) + 4 * (4 * (512 + 512) + 3 * (1376 + 512)), rowsPlusCols);
        assertEquals(9 * 512, vectors);

        long adamw = new AdamW(store.params(), store.grads(), spans, AdamWConfig.defaults()).stateBytes();
        long adafactor = new Adafactor(store.params(), store.grads(), spans, AdafactorConfig.defaults()).stateBytes();
        long came = new CAME(store.params(), store.grads(), spans, CAMEConfig.defaults()).stateBytes();
        System.out.printf("wide preset (%,d params) optimizer state, fp32: AdamW %,d B, Adafactor %,d B (%.3f%%),"
                + " CAME %,d B (%.1f%%)%n", numel, adamw, adafactor, 100.0 * adafactor / adamw, came,
                100.0 * came / adamw);

        assertEquals(4 * 2 * numel, adamw);
        assertEquals(4 * (rowsPlusCols + vectors), adafactor);
        assertEquals(4 * (numel + 2 * rowsPlusCols + vectors), came);
        assertTrue(adafactor < 0.05 * adamw, adafactor + " vs " + adamw);
        long adamwMatrices = 4 * 2 * (numel - vectors);
        assertTrue(4 * rowsPlusCols < 0.05 * adamwMatrices, "matrices alone");
    }
}
