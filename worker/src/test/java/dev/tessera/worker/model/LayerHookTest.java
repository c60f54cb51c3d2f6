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

    /** Where the calls point in the tiny model's flat buffers: units 0 embedding, 1-2 blocks 0-1, 3 head. */
    private record Offsets(long[] u, long ffn0, long ffn1, long down0, long gateUp0) {

        static Offsets of(Transformer m) {
            ParameterStore ps = m.parameters();
            return new Offsets(m.unitBounds(), ps.tensor("model.layers.0.post_attention_layernorm.weight").offset(),
                    ps.tensor("model.layers.1.post_attention_layernorm.weight").offset(),
                    ps.tensor("model.layers.0.mlp.down_proj.weight").offset(), // block 1 is MoE
                    ps.tensor("model.layers.0.mlp.gate_proj.weight").offset());
        }
    }

    private static final int[] IN = TransformerTest.tokens(1, 10, TransformerTest.tiny().vocabSize());
    private static final int[] TARGETS = TransformerTest.tokens(2, 10, TransformerTest.tiny().vocabSize());

    /** One step of {@code m} without syncs, then one with a recorder as both: the same arithmetic, and its calls. */
    private static Recorder recordedStep(Transformer m) {
        m.initialize(3);
        LossParts plain = m.forwardBackward(IN, TARGETS);
        Recorder r = new Recorder();
        m.useParameterSync(r);
        m.useGradientSync(r);
        LossParts hooked = m.forwardBackward(IN, TARGETS);
        assertEquals(plain, hooked, "the syncs observe, they do not change the arithmetic");
        return r;
    }

    @Test
    void forwardBackwardFetchesEachLayerBeforeUseAndHandsOverItsGradientsLastLayerFirst() {
        Transformer m = new Transformer(TransformerTest.tiny(), DataType.DOUBLE, 2, 5);
        Recorder r = recordedStep(m);
        Offsets o = Offsets.of(m);
        assertEquals(List.of("zero",
                "acquire 0 1", "release 0", "acquire 1 2", "release 1", "acquire 2 3", "release 2",
                "acquire 3 2", // the head stays for backward, and the last block is fetched meanwhile
                "release 3", "ready " + o.u()[3],
                // a block's FFN half (a dense block's down projection first): its gradients handed over, its
                // parameters let go; then the next block is fetched
                "acquire 2 -1", "ready " + o.ffn1(), "releaseFrom 2 " + o.ffn1() + " 1", "release 2",
                "ready " + o.u()[2],
                "acquire 1 -1", "ready " + o.down0(), "releaseFrom 1 " + o.down0() + " -1",
                "releaseFrom 1 " + o.gateUp0() + " -1", // gate and up read: their weights go before their gradients
                "ready " + o.ffn0(), "releaseFrom 1 " + o.ffn0() + " -1", // the embedding reads none
                "release 1", "ready " + o.u()[1],
                "ready 0"), r.calls);

        r.calls.clear();
        m.evaluate(IN, TARGETS);
        assertEquals(List.of("acquire 0 1", "release 0", "acquire 1 2", "release 1", "acquire 2 3", "release 2",
                "acquire 3 -1", "release 3"), r.calls);
    }

    /**
     * With every block recomputed, a block lets its attention half go once that is recomputed and has it back once
     * its FFN half is through, fetching the next block then; the last block's activations are kept, so it keeps its
     * parameters as before.
     */
    @Test
    void aRecomputedBlockLetsItsAttentionHalfGoUntilItsFfnHalfIsThrough() {
        Transformer m = new Transformer(TransformerTest.tiny(), DataType.DOUBLE, 2, 5, FlatMemory.ND4J,
                RecomputePolicy.EVERY_BLOCK);
        Recorder r = recordedStep(m);
        Offsets o = Offsets.of(m);
        assertEquals(List.of("zero",
                "acquire 0 1", "release 0", "acquire 1 2", "release 1", "acquire 2 3", "release 2",
                "acquire 3 2", "release 3", "ready " + o.u()[3],
                "acquire 2 -1", "ready " + o.ffn1(), "releaseFrom 2 " + o.ffn1() + " 1", "release 2",
                "ready " + o.u()[2],
                "acquire 1 -1", "releaseAttention 1", // block 0 recomputed: its attention half goes meanwhile
                "ready " + o.down0(), "releaseFrom 1 " + o.down0() + " -1", "releaseFrom 1 " + o.gateUp0() + " -1",
                "ready " + o.ffn0(), "releaseFrom 1 " + o.ffn0() + " -1", "reacquireAttention 1 -1",
                "release 1", "ready " + o.u()[1],
                "ready 0"), r.calls);
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
}
