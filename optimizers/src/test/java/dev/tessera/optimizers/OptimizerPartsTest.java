package dev.tessera.optimizers;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * An optimizer of two parts (expert parallelism's dense region and expert region, each its own optimizer over its
 * own spans) updates exactly as one optimizer over all the spans: every update is per tensor, so cutting the list
 * of tensors in two changes no bit.
 */
class OptimizerPartsTest {

    private static final long[][] SHAPES = {{6, 5}, {5}, {4, 3, 2}, {7, 3}, {3}};
    private static final int CUT = 2; // tensors [0, CUT) in the first part

    @Test
    void twoPartsUpdateAsOneOptimizerOverTheUnion() {
        OptimizerSpec[] specs = {
            new OptimizerSpec(OptimizerSpec.ADAMW, AdamWConfig.defaults(), AdafactorConfig.defaults(),
                    CAMEConfig.defaults()),
            new OptimizerSpec(OptimizerSpec.CAME, AdamWConfig.defaults(), AdafactorConfig.defaults(),
                    CAMEConfig.defaults()),
            new OptimizerSpec(OptimizerSpec.ADAFACTOR, AdamWConfig.defaults(), AdafactorConfig.defaults(),
                    CAMEConfig.defaults())};
        for (OptimizerSpec spec : specs) {
            FlatModel one = new FlatModel(DataType.DOUBLE, SHAPES);
            FlatModel two = new FlatModel(DataType.DOUBLE, SHAPES);
            Optimizer whole = spec.create(one.params, one.grads, one.spans);
            List<ParamSpan> first = one.spans.subList(0, CUT);
            List<ParamSpan> second = one.spans.subList(CUT, one.spans.size());
            long cut = second.get(0).offset();
            Optimizer parts = new OptimizerParts(List.of(
                    spec.create(two.params, two.grads, first, new Shard(0, cut), ShardReducer.LOCAL),
                    spec.create(two.params, two.grads, second, new Shard(cut, two.numel), ShardReducer.LOCAL)));
            OptimizerChecks.stepTogether(one, whole, two, parts, 7, 4, 1e-2, 0.8);
            assertArrayEquals(one.params(), two.params(), 0.0, spec.name());
            assertEquals(whole.stateBytes(), parts.stateBytes(), spec.name());
            assertEquals(2, parts.stateParts().size(), spec.name());
            assertThrows(UnsupportedOperationException.class, parts::state, spec.name());
        }
    }
}
