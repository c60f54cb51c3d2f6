package dev.tessera.worker.parallel;

import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.Transformer;
import java.math.BigInteger;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MemoryEstimateTest {

    private static final ModelConfig MOE = new ModelConfig(256, 32, 2, 4, 64, 4, 2, 2, 32, 10000.0, 1e-5, 0.01, 16);

    /** The issue's config: the parameter count overflowed long and wrapped to a size that passed planning. */
    private static final ModelConfig HUGE = new ModelConfig(256, 2147463584, 4, 4, 715885514, 4, 2, 2, 172,
            10000.0, 1e-5, 0.01, 16);

    @Test
    void parametersAreCountedExactlyFromTheLayout() {
        long numel = new Transformer(MOE, DataType.FLOAT, 2, 16).parameters().numel();
        MemoryEstimate e = MemoryEstimate.of(MOE, 4, Mesh.SINGLE, 2, 16, 2.0, 0);
        assertEquals(BigInteger.valueOf(numel * 4), e.paramBytes());
        assertEquals(BigInteger.valueOf(numel * 4), e.gradBytes());
        assertEquals(BigInteger.valueOf(numel * 8), e.optimizerStateBytes());
        assertEquals(Optional.empty(), MemoryEstimate.firstOversized(MOE, 4, Mesh.SINGLE, 2, 16));
    }

    @Test
    void expertParallelismDividesOnlyExpertParameters() {
        MemoryEstimate one = MemoryEstimate.of(MOE, 4, new Mesh(2, 1, 1), 4, 16, 0, 0);
        MemoryEstimate split = MemoryEstimate.of(MOE, 4, new Mesh(2, 1, 2), 4, 16, 0, 0);
        long expertBytes = 4L * 3 * 32 * 32 * 4; // 4 experts x (w1, w2, w3) of 32x32 floats, in the one MoE block
        assertEquals(one.paramBytes().subtract(BigInteger.valueOf(expertBytes / 2)), split.paramBytes());
    }

    @Test
    void dataAndSequenceParallelismShrinkActivations() {
        MemoryEstimate single = MemoryEstimate.of(MOE, 4, Mesh.SINGLE, 4, 16, 2.0, 0);
        MemoryEstimate dp2 = MemoryEstimate.of(MOE, 4, new Mesh(2, 1, 1), 4, 16, 2.0, 0);
        MemoryEstimate sp2 = MemoryEstimate.of(MOE, 4, new Mesh(1, 2, 1), 4, 16, 2.0, 0);
        assertEquals(single.activationBytes(), dp2.activationBytes().shiftLeft(1));
        assertEquals(single.activationBytes(), sp2.activationBytes().shiftLeft(1));
        assertTrue(single.total().compareTo(single.runtimeBytes()) > 0);
    }

    @Test
    void sizesBeyondLongAreExactNotWrapped() {
        MemoryEstimate e = MemoryEstimate.of(HUGE, 4, Mesh.SINGLE, 8, 16, 2.0, 0);
        // Two dense blocks (layers 0, 2) of 3 d_model x d_ff matrices dominate: far beyond Long.MAX_VALUE.
        BigInteger denseFfn = BigInteger.valueOf(2147463584L).multiply(BigInteger.valueOf(715885514L))
                .multiply(BigInteger.valueOf(3 * 2 * 4));
        assertTrue(e.paramBytes().compareTo(denseFfn) > 0, e.paramBytes().toString());
        assertTrue(e.total().compareTo(BigInteger.valueOf(Long.MAX_VALUE)) > 0);
    }

    @Test
    void theIssuesConfigNamesItsFirstOversizedTensor() {
        MemoryEstimate.Oversized o = MemoryEstimate.firstOversized(HUGE, 4, Mesh.SINGLE, 8, 16).orElseThrow();
        assertEquals("parameter model.embed_tokens.weight [256, 2147463584]", o.buffer());
        assertEquals(BigInteger.valueOf(256L * 2147463584L * 4), o.bytes());
        assertEquals(List.of("model.d_model"), o.fields());
    }

    @Test
    void oneTensorJustOverTheLimitIsRefusedAndOneAtItIsNot() {
        // mlp.gate_proj is [d_ff, 8]: 8 x 4 bytes per row, so d_ff = 2^26 - 1 rows fit in 2^31 - 1 bytes, 2^26 not.
        ModelConfig at = ModelConfig.dense(256, 8, 1, 2, (1 << 26) - 1, 16);
        ModelConfig over = ModelConfig.dense(256, 8, 1, 2, 1 << 26, 16);
        assertTrue(MemoryEstimate.firstOversized(at, 4, Mesh.SINGLE, 1, 1).map(o -> o.buffer())
                .filter(b -> b.startsWith("parameter")).isEmpty());
        MemoryEstimate.Oversized o = MemoryEstimate.firstOversized(over, 4, Mesh.SINGLE, 1, 1).orElseThrow();
        assertEquals("parameter model.layers.0.mlp.gate_proj.weight [67108864, 8]", o.buffer());
        assertEquals(List.of("model.d_ff", "model.d_model"), o.fields());
    }

    @Test
    void allParametersTogetherBeyondTwoGibAreAcceptedWhenEachTensorFits() {
        // Each [d_ff, 64] matrix is 2^30 bytes in float64; the three of one dense block together are 3 GiB, which
        // the flat buffers hold (kernels view one tensor at a time).
        ModelConfig cfg = ModelConfig.dense(256, 64, 1, 2, 1 << 21, 16);
        assertEquals(Optional.empty(), MemoryEstimate.firstOversized(cfg, 8, Mesh.SINGLE, 1, 1));
    }

    @Test
    void activationsOverTheLimitNameTheBatchAndSequence() {
        // 2^16 x 2^16 tokens per rank would wrap an int; [tokens, vocab] floats are 2^42 bytes.
        MemoryEstimate.Oversized o = MemoryEstimate.firstOversized(ModelConfig.dense(256, 8, 1, 2, 16, 1 << 16), 4,
                Mesh.SINGLE, 1 << 16, 1 << 16).orElseThrow();
        assertTrue(o.fields().containsAll(List.of("train.batch_size", "train.seq_len")), o.toString());
        assertEquals(Optional.empty(), MemoryEstimate.firstOversized(ModelConfig.dense(256, 8, 1, 2, 16, 1 << 10), 4,
                new Mesh(128, 1, 1), 1 << 16, 1 << 10));
    }

    @Test
    void theLayoutRefusesOffsetsThatWouldWrapInsteadOfAllocatingGarbage() {
        ParameterStore.Builder b = ParameterStore.builder().add("a", Long.MAX_VALUE / 2 + 1);
        assertThrows(ArithmeticException.class, () -> b.add("b", Long.MAX_VALUE / 2 + 1));
        assertThrows(ArithmeticException.class, () -> ParameterStore.builder().add("c", 1L << 32, 1L << 32));
        assertThrows(IllegalArgumentException.class,
                () -> ParameterStore.builder().add("d", 1L << 30).build(DataType.FLOAT));
    }
}
