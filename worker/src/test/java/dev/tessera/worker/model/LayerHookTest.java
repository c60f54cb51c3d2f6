package dev.tessera.worker.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The order in which the model meets its installed syncs, layer by layer: ZeRO-3 depends on it (a layer's
 * parameters gathered before use, the next one prefetched, freed after; in backward a block's FFN half freed
 * before the next block is fetched) and so does the overlap of gradient
 * reduction with backward (each layer's gradients handed over as soon as they are final, last layer first).
 */
class LayerHookTest {

    /** Records every call, as "acquire 1 2", "release 1", "ready 123", "zero". */
    private static final class Recorder implements ParameterSync, GradientSync {
        final List<String> calls = new ArrayList<>();

        @Override
        public void acquire(int unit, int next) {
            calls.add("acquire " + unit + " " + next);
        }

        @Override
        public void release(int unit) {
            calls.add("release " + unit);
        }

        @Override
        public void releaseFrom(int unit, long fromElement, int next) {
            calls.add("releaseFrom " + unit + " " + fromElement + " " + next);
        }

        @Override
        public void releaseAttention(int unit) {
            calls.add("releaseAttention " + unit);
        }

        @Override
        public void reacquireAttention(int unit, int next) {
            calls.add("reacquireAttention " + unit + " " + next);
        }

        @Override
        public void afterUpdate() {
            calls.add("afterUpdate");
        }

        @Override
        public void ready(long fromElement) {
            calls.add("ready " + fromElement);
        }

        @Override
        public void finish() {
            calls.add("finish");
        }

        @Override
        public void zero(ParameterStore params) {
            calls.add("zero");
            params.zeroGrads();
        }
    }

    @Test
    void forwardBackwardFetchesEachLayerBeforeUseAndHandsOverItsGradientsLastLayerFirst() {
        ModelConfig cfg = TransformerTest.tiny(); // units 0 embedding, 1 block 0 (dense), 2 block 1 (MoE), 3 head
        Transformer m = new Transformer(cfg, DataType.DOUBLE, 2, 5);
        m.initialize(3);
        int[] in = TransformerTest.tokens(1, 10, cfg.vocabSize());
        int[] tg = TransformerTest.tokens(2, 10, cfg.vocabSize());
        LossParts plain = m.forwardBackward(in, tg);

        Recorder r = new Recorder();
        m.useParameterSync(r);
        m.useGradientSync(r);
        LossParts hooked = m.forwardBackward(in, tg);
        long[] u = m.unitBounds();
        long ffn0 = m.parameters().tensor("model.layers.0.post_attention_layernorm.weight").offset();
        long ffn1 = m.parameters().tensor("model.layers.1.post_attention_layernorm.weight").offset();
        long down0 = m.parameters().tensor("model.layers.0.mlp.down_proj.weight").offset(); // block 1 is MoE
        long gateUp0 = m.parameters().tensor("model.layers.0.mlp.gate_proj.weight").offset();
        assertEquals(List.of("zero",
                "acquire 0 1", "release 0", "acquire 1 2", "release 1", "acquire 2 3", "release 2",
                "acquire 3 2", // the head stays for backward, and the last block is fetched meanwhile
                "release 3", "ready " + u[3],
                // a block's FFN half (a dense block's down projection first): its gradients handed over, its
                // parameters let go; then the next block is fetched
                "acquire 2 -1", "ready " + ffn1, "releaseFrom 2 " + ffn1 + " 1", "release 2", "ready " + u[2],
                "acquire 1 -1", "ready " + down0, "releaseFrom 1 " + down0 + " -1",
                "releaseFrom 1 " + gateUp0 + " -1", // gate and up read: their weights go before their gradients come
                "ready " + ffn0, "releaseFrom 1 " + ffn0 + " -1", // the embedding reads none
                "release 1", "ready " + u[1],
                "ready 0"), r.calls);
        assertEquals(plain, hooked, "the syncs observe, they do not change the arithmetic");

        r.calls.clear();
        m.evaluate(in, tg);
        assertEquals(List.of("acquire 0 1", "release 0", "acquire 1 2", "release 1", "acquire 2 3", "release 2",
                "acquire 3 -1", "release 3"), r.calls);
    }

    @Test
    void unitsCoverTheFlatBuffersInLayerOrder() {
        Transformer m = new Transformer(TransformerTest.tiny(), DataType.DOUBLE, 1, 4);
        ParameterStore ps = m.parameters();
        long[] u = m.unitBounds();
        assertEquals(List.of(0L, ps.tensor("model.layers.0.input_layernorm.weight").offset(),
                ps.tensor("model.layers.1.input_layernorm.weight").offset(), ps.tensor("model.norm.weight").offset(),
                ps.numel()), java.util.Arrays.stream(u).boxed().toList());
    }

    /**
     * With every block recomputed, a block lets its attention half go once that is recomputed and has it back once
     * its FFN half is through, fetching the next block then; the last block's activations are kept, so it keeps its
     * parameters as before.
     */
    @Test
    void aRecomputedBlockLetsItsAttentionHalfGoUntilItsFfnHalfIsThrough() {
        ModelConfig cfg = TransformerTest.tiny(); // units 0 embedding, 1 block 0 (dense), 2 block 1 (MoE), 3 head
        Transformer plain = new Transformer(cfg, DataType.DOUBLE, 2, 5, FlatMemory.ND4J, RecomputePolicy.EVERY_BLOCK);
        plain.initialize(3);
        int[] in = TransformerTest.tokens(1, 10, cfg.vocabSize());
        int[] tg = TransformerTest.tokens(2, 10, cfg.vocabSize());
        LossParts expected = plain.forwardBackward(in, tg);

        Transformer m = new Transformer(cfg, DataType.DOUBLE, 2, 5, FlatMemory.ND4J, RecomputePolicy.EVERY_BLOCK);
        m.initialize(3);
        Recorder r = new Recorder();
        m.useParameterSync(r);
        m.useGradientSync(r);
        LossParts hooked = m.forwardBackward(in, tg);
        long[] u = m.unitBounds();
        long ffn0 = m.parameters().tensor("model.layers.0.post_attention_layernorm.weight").offset();
        long ffn1 = m.parameters().tensor("model.layers.1.post_attention_layernorm.weight").offset();
        long down0 = m.parameters().tensor("model.layers.0.mlp.down_proj.weight").offset();
        long gateUp0 = m.parameters().tensor("model.layers.0.mlp.gate_proj.weight").offset();
        assertEquals(List.of("zero",
                "acquire 0 1", "release 0", "acquire 1 2", "release 1", "acquire 2 3", "release 2",
                "acquire 3 2", "release 3", "ready " + u[3],
                "acquire 2 -1", "ready " + ffn1, "releaseFrom 2 " + ffn1 + " 1", "release 2", "ready " + u[2],
                "acquire 1 -1", "releaseAttention 1", // block 0 recomputed: its attention half goes meanwhile
                "ready " + down0, "releaseFrom 1 " + down0 + " -1", "releaseFrom 1 " + gateUp0 + " -1",
                "ready " + ffn0, "releaseFrom 1 " + ffn0 + " -1", "reacquireAttention 1 -1",
                "release 1", "ready " + u[1],
                "ready 0"), r.calls);
        assertEquals(expected, hooked, "the syncs observe, they do not change the arithmetic");
    }
}
