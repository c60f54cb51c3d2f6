package dev.tessera.worker.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/** Whole-model checks: float64 gradients of every tensor, float32 vs float64, seed determinism. */
class TransformerTest {

    /** vocab 11, d_model 8, 2 heads, 2 layers, layer 1 MoE (4 experts, top-2), layer 0 dense. */
    static ModelConfig tiny() {
        return new ModelConfig(11, 8, 2, 2, 12, 4, 2, 2, 6, 10000.0, 1e-5, 0.1, 16);
    }

    /** Big enough that every Vector API loop runs full vectors (head_dim 32, rows of 64 and more). */
    static ModelConfig small() {
        return new ModelConfig(50, 64, 2, 2, 96, 4, 2, 2, 48, 10000.0, 1e-5, 0.05, 64);
    }

    static int[] tokens(long seed, int n, int vocab) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = r.nextInt(vocab);
        }
        return t;
    }

    @Test
    void parameterLayoutFollowsHuggingFaceNamesInModelOrder() {
        Transformer m = new Transformer(tiny(), DataType.DOUBLE, 1, 4);
        var names = m.parameters().tensors().stream().map(ParameterStore.Tensor::name).toList();
        assertEquals("model.embed_tokens.weight", names.get(0));
        assertEquals("model.layers.0.input_layernorm.weight", names.get(1));
        assertEquals("model.layers.0.self_attn.q_proj.weight", names.get(2));
        assertTrue(names.contains("model.layers.0.mlp.down_proj.weight"));
        assertTrue(names.contains("model.layers.1.block_sparse_moe.gate.weight"));
        assertTrue(names.contains("model.layers.1.block_sparse_moe.experts.3.w2.weight"));
        assertEquals("model.norm.weight", names.get(names.size() - 2));
        assertEquals("lm_head.weight", names.get(names.size() - 1));
        assertArrayEquals(new long[] {12, 8}, m.parameters().tensor("model.layers.0.mlp.gate_proj.weight").shape());
    }

    @Test
    void wholeModelGradientCheck() {
        ModelConfig cfg = tiny();
        Transformer m = new Transformer(cfg, DataType.DOUBLE, 2, 5);
        ParameterStore ps = m.parameters();
        // Larger weights than the 0.02 init so every gradient is far above the differencing noise.
        SplittableRandom rng = new SplittableRandom(7);
        for (ParameterStore.Tensor t : ps.tensors()) {
            boolean gain = t.name().endsWith("norm.weight") || t.name().endsWith("layernorm.weight");
            GradCheck.fill(ps.param(t.name()), rng, gain ? 1 : 0, gain ? 0.2 : 0.7);
        }
        int[] in = tokens(1, 10, cfg.vocabSize());
        int[] tg = tokens(2, 10, cfg.vocabSize());
        LossParts parts = m.forwardBackward(in, tg);
        assertTrue(parts.aux() > 0);
        double[][] analytic = new double[ps.tensors().size()][];
        for (int i = 0; i < analytic.length; i++) {
            analytic[i] = GradCheck.values(ps.grad(ps.tensors().get(i).name()));
        }
        for (int i = 0; i < analytic.length; i++) {
            String name = ps.tensors().get(i).name();
            double[] num = GradCheck.numeric(ps.param(name), () -> m.forward(in, tg).total(cfg.auxCoef(), cfg.routing().zCoef()));
            GradCheck.check(name, analytic[i], num);
        }
    }

    @Test
    void gradientsAreZeroedEachStep() {
        Transformer m = new Transformer(tiny(), DataType.DOUBLE, 2, 5);
        m.initialize(3);
        int[] in = tokens(1, 10, 11);
        int[] tg = tokens(2, 10, 11);
        m.forwardBackward(in, tg);
        double[] g1 = GradCheck.values(m.parameters().grads());
        m.forwardBackward(in, tg);
        assertArrayEquals(g1, GradCheck.values(m.parameters().grads()));
    }

    @Test
    void float32MatchesFloat64() {
        ModelConfig cfg = small();
        int b = 2;
        int t = 40;
        Transformer m32 = new Transformer(cfg, DataType.FLOAT, b, t);
        Transformer m64 = new Transformer(cfg, DataType.DOUBLE, b, t);
        m32.initialize(11);
        m64.initialize(11);
        // Same init values up to float rounding: copy the float32 weights so both see identical numbers.
        m64.parameters().params().assign(m32.parameters().params().castTo(DataType.DOUBLE));
        int[] in = tokens(3, b * t, cfg.vocabSize());
        int[] tg = tokens(4, b * t, cfg.vocabSize());
        LossParts l32 = m32.forwardBackward(in, tg);
        LossParts l64 = m64.forwardBackward(in, tg);
        assertEquals(l64.crossEntropy(), l32.crossEntropy(), 1e-5 * l64.crossEntropy());
        assertEquals(l64.aux(), l32.aux(), 1e-5 * l64.aux());
        assertEquals(m64.evaluate(in, tg), m32.evaluate(in, tg), 1e-5 * l64.crossEntropy());
        ParameterStore p32 = m32.parameters();
        ParameterStore p64 = m64.parameters();
        for (ParameterStore.Tensor tensor : p64.tensors()) {
            double[] g64 = GradCheck.values(p64.grad(tensor.name()));
            double[] g32 = GradCheck.values(p32.grad(tensor.name()));
            double err = GradCheck.relErr(g32, g64);
            assertTrue(err < 1e-4, tensor.name() + ": float32 grads differ from float64 by " + err);
        }
    }

    @Test
    void sameSeedGivesBitwiseEqualLossAndGrads() {
        ModelConfig cfg = small();
        int[] in = tokens(5, 2 * 32, cfg.vocabSize());
        int[] tg = tokens(6, 2 * 32, cfg.vocabSize());
        Transformer a = new Transformer(cfg, DataType.FLOAT, 2, 32);
        Transformer b = new Transformer(cfg, DataType.FLOAT, 2, 32);
        a.initialize(99);
        b.initialize(99);
        LossParts la = a.forwardBackward(in, tg);
        LossParts lb = b.forwardBackward(in, tg);
        assertEquals(Double.doubleToLongBits(la.crossEntropy()), Double.doubleToLongBits(lb.crossEntropy()));
        assertEquals(Double.doubleToLongBits(la.aux()), Double.doubleToLongBits(lb.aux()));
        assertArrayEquals(GradCheck.values(a.parameters().grads()), GradCheck.values(b.parameters().grads()));
        Transformer c = new Transformer(cfg, DataType.FLOAT, 2, 32);
        c.initialize(100);
        assertTrue(c.forwardBackward(in, tg).crossEntropy() != la.crossEntropy());
        // Initial loss of a 0.02-init model is close to ln(V).
        assertEquals(Math.log(cfg.vocabSize()), la.crossEntropy(), 0.05);
    }
}
