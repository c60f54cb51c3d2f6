package dev.tessera.worker.parallel;

import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.Transformer;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MemoryEstimateTest {

    private static final ModelConfig MOE = new ModelConfig(256, 32, 2, 4, 64, 4, 2, 2, 32, 10000.0, 1e-5, 0.01, 16);

    @Test
    void parametersAreCountedExactlyFromTheLayout() {
        long numel = new Transformer(MOE, DataType.FLOAT, 2, 16).parameters().numel();
        MemoryEstimate e = MemoryEstimate.of(MOE, 4, Mesh.SINGLE, 2, 16, 2.0, 0);
        assertEquals(numel * 4, e.paramBytes());
        assertEquals(numel * 4, e.gradBytes());
        assertEquals(numel * 8, e.optimizerStateBytes());
    }

    @Test
    void expertParallelismDividesOnlyExpertParameters() {
        MemoryEstimate one = MemoryEstimate.of(MOE, 4, new Mesh(2, 1, 1), 4, 16, 0, 0);
        MemoryEstimate split = MemoryEstimate.of(MOE, 4, new Mesh(2, 1, 2), 4, 16, 0, 0);
        long expertBytes = 4L * 3 * 32 * 32 * 4; // 4 experts x (w1, w2, w3) of 32x32 floats, in the one MoE block
        assertEquals(one.paramBytes() - expertBytes / 2, split.paramBytes());
    }

    @Test
    void dataAndSequenceParallelismShrinkActivations() {
        MemoryEstimate single = MemoryEstimate.of(MOE, 4, Mesh.SINGLE, 4, 16, 2.0, 0);
        MemoryEstimate dp2 = MemoryEstimate.of(MOE, 4, new Mesh(2, 1, 1), 4, 16, 2.0, 0);
        MemoryEstimate sp2 = MemoryEstimate.of(MOE, 4, new Mesh(1, 2, 1), 4, 16, 2.0, 0);
        assertEquals(single.activationBytes(), 2 * dp2.activationBytes());
        assertEquals(single.activationBytes(), 2 * sp2.activationBytes());
        assertTrue(single.total() > single.runtimeBytes());
    }
}
