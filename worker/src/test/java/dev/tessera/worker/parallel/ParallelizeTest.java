package dev.tessera.worker.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.optimizers.AdafactorConfig;
import dev.tessera.optimizers.AdamWConfig;
import dev.tessera.optimizers.CAMEConfig;
import dev.tessera.optimizers.OptimizerSpec;
import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.ShardReducer;
import dev.tessera.worker.model.ExpertShard;
import dev.tessera.worker.model.FlatMemory;
import dev.tessera.worker.model.GradientSync;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.ParameterSync;
import dev.tessera.worker.model.RecomputePolicy;
import dev.tessera.worker.model.ReplicaReducer;
import dev.tessera.worker.model.Transformer;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/** What {@code parallelize} installs where every group is local (nothing that communicates), and the layout it shards. */
class ParallelizeTest {

    static final OptimizerSpec ADAMW = new OptimizerSpec(OptimizerSpec.ADAMW, AdamWConfig.defaults(),
            AdafactorConfig.defaults(), CAMEConfig.defaults());
    static final ModelConfig MOE = new ModelConfig(11, 8, 2, 2, 12, 4, 2, 2, 6, 10000.0, 1e-5, 0.1, 16);

    @Test
    void aSingleProcessGetsTheLocalStrategiesWhateverTheZeroStage() {
        for (int stage = 0; stage <= 3; stage++) {
            ParallelSpec spec = ParallelSpec.of(stage, ADAMW);
            assertSame(FlatMemory.ND4J, Parallelize.gradientMemory(DeviceMesh.single(), spec));
            Transformer model = new Transformer(MOE, DataType.FLOAT, 2, 4);
            Sharding s = Parallelize.apply(model, DeviceMesh.single(), spec, MemoryProbe.OFF);
            assertSame(GradientSync.NONE, s.gradients());
            assertSame(ParameterSync.RESIDENT, s.parameters());
            assertSame(ReplicaReducer.LOCAL, s.replicas());
            assertEquals(1, s.optimizerParts().size());
            assertSame(ShardReducer.LOCAL, s.optimizerParts().get(0).reducer());
            assertEquals(Shard.whole(model.parameters().numel()), s.optimizerParts().get(0).shard());
            assertEquals(model.parameters().spans().size(), s.optimizerParts().get(0).spans().size());
        }
    }

    @Test
    void compressionWithZeroThreeIsRefused() {
        GradientCodec other = (group, bucket, gradients, dtype) -> GradientCodec.IDENTITY.reduceAsync(group, bucket,
                gradients, dtype);
        ParallelSpec spec = new ParallelSpec(3, ADAMW,
                ParallelSpec.BUCKET_ELEMENTS, other, ParallelSpec.FLAT, false, SequenceScheme.ALLGATHER);
        Transformer model = new Transformer(MOE, DataType.FLOAT, 2, 4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Parallelize.apply(model, DeviceMesh.single(), spec, MemoryProbe.OFF));
        assertTrue(e.getMessage().contains("ZeRO stage 3"), e.getMessage());
    }

    /**
     * Holding only some experts, the dense tensors come first and the held experts after the head, block by block,
     * so each is one region a ZeRO group can shard; the model order interleaves them, and a region is refused
     * there. A unit is a range of each region; after block l's backward its experts and every later block's are
     * final.
     */
    @Test
    void expertParallelLayoutKeepsTheDenseAndExpertRegionsApart() {
        ModelConfig cfg = new ModelConfig(11, 8, 4, 2, 12, 4, 2, 2, 6, 10000.0, 1e-5, 0.1, 16);
        Transformer model = new Transformer(cfg, DataType.FLOAT, 2, 4, FlatMemory.ND4J, FlatMemory.ND4J,
                RecomputePolicy.NONE, new ExpertShard(2, 2));
        ParameterStore params = model.parameters();
        FlatRegion dense = FlatRegion.of(params, name -> !ExpertShard.isExpertTensor(name));
        FlatRegion experts = FlatRegion.of(params, ExpertShard::isExpertTensor);
        assertEquals(0, dense.from());
        assertEquals(dense.to(), experts.from());
        assertEquals(params.numel(), experts.to());
        assertEquals(params.tensor("lm_head.weight").end(), dense.to());
        assertEquals(2 * 2 * 3, experts.tensors().size()); // 2 MoE blocks x 2 held experts x w1, w3, w2

        // Units: embedding, blocks 0-3 (1 and 3 with experts), head.
        long[] unitBounds = model.unitBounds();
        ExpertParallelUnits units = ExpertParallelUnits.of(params, unitBounds);
        long block1 = params.tensor("model.layers.1.block_sparse_moe.experts.2.w1.weight").offset();
        long block3 = params.tensor("model.layers.3.block_sparse_moe.experts.2.w1.weight").offset();
        long end = params.numel();
        assertArrayEquals(new long[] {block1, block1, block1, block3, block3, end, end}, units.expertBounds());
        long[] denseUnits = units.denseBounds();
        assertEquals(denseUnits.length, unitBounds.length);
        assertEquals(experts.from(), denseUnits[denseUnits.length - 1]);
        assertEquals(block3, units.expertsFinalFrom(unitBounds[3])); // block 2 done: block 3's experts are final
        assertEquals(block1, units.expertsFinalFrom(unitBounds[2])); // block 1 done: its own too
        assertEquals(end, units.expertsFinalFrom(unitBounds[5]));    // the head done: no experts yet
        assertTrue(units.holds(2, params.tensor("model.layers.1.block_sparse_moe.experts.3.w2.weight")));
        assertTrue(units.holds(2, params.tensor("model.layers.1.self_attn.q_proj.weight")));
        assertTrue(!units.holds(5, params.tensor("model.layers.3.block_sparse_moe.experts.3.w2.weight")));

        Transformer whole = new Transformer(cfg, DataType.FLOAT, 2, 4);
        assertThrows(IllegalArgumentException.class,
                () -> FlatRegion.of(whole.parameters(), ExpertShard::isExpertTensor));
    }
}
