package dev.tessera.worker.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/** Recomputing a block's activations in backward gives the same bits as keeping them. */
class ActivationCheckpointingTest {

    /** 4 blocks, MoE every second one (blocks 1 and 3), vector-width rows. */
    private static ModelConfig fourBlocks() {
        return new ModelConfig(50, 64, 4, 2, 96, 4, 2, 2, 48, 10000.0, 1e-5, 0.05, 64);
    }

    @Test
    void everyPolicyGivesTheLossesAndGradientsOfKeptActivationsBitForBit() {
        for (DataType dtype : List.of(DataType.FLOAT, DataType.DOUBLE)) {
            double[][] reference = twoSteps(fourBlocks(), dtype, RecomputePolicy.NONE);
            for (RecomputePolicy policy : List.of(RecomputePolicy.EVERY_BLOCK, new RecomputePolicy(2),
                    new RecomputePolicy(3))) {
                double[][] recomputed = twoSteps(fourBlocks(), dtype, policy);
                for (int i = 0; i < reference.length; i++) {
                    assertArrayEquals(reference[i], recomputed[i], dtype + " " + policy + ", result " + i);
                }
            }
        }
    }

    /** Losses and gradients of two steps on different batches (the shared buffers carry nothing between them). */
    private static double[][] twoSteps(ModelConfig cfg, DataType dtype, RecomputePolicy policy) {
        Transformer m = new Transformer(cfg, dtype, 2, 32, FlatMemory.ND4J, policy);
        m.initialize(7);
        double[][] out = new double[4][];
        for (int step = 0; step < 2; step++) {
            int[] in = TransformerTest.tokens(10 + step, 64, cfg.vocabSize());
            int[] tg = TransformerTest.tokens(20 + step, 64, cfg.vocabSize());
            LossParts loss = m.forwardBackward(in, tg);
            out[2 * step] = new double[] {loss.crossEntropy(), loss.aux()};
            out[2 * step + 1] = GradCheck.values(m.parameters().grads());
        }
        assertNotEquals(out[0][0], out[2][0], "the two batches differ");
        return out;
    }

    @Test
    void theBlocksThatRecomputeShareOneSetOfBuffersAndTheOthersKeepTheirOwn() {
        Activations shared = Activations.shared();
        double[] first = shared.doubles(8);
        int[] firstInts = shared.ints(8);
        double[] second = shared.doubles(8);
        shared.nextLayer();
        assertEquals(first, shared.doubles(8), "the next layer's first request of a shape");
        assertEquals(second, shared.doubles(8));
        assertEquals(firstInts, shared.ints(8));
        assertNotEquals(first, shared.doubles(8), "a third buffer of the shape is new");
        Activations own = Activations.own();
        assertNotEquals(own.doubles(8), own.doubles(8));
    }
}
