package dev.tessera.worker.parallel;

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
import dev.tessera.worker.model.FlatMemory;
import dev.tessera.worker.model.GradientSync;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterSync;
import dev.tessera.worker.model.ReplicaReducer;
import dev.tessera.worker.model.Transformer;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/** What {@code parallelize} installs where every group is local: nothing that communicates. */
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
            assertSame(ShardReducer.LOCAL, s.optimizerReducer());
            assertEquals(Shard.whole(model.parameters().numel()), s.shard());
        }
    }

    @Test
    void compressionWithZeroIsRefused() {
        GradientCodec other = (group, bucket, gradients, dtype) -> GradientCodec.IDENTITY.reduceAsync(group, bucket,
                gradients, dtype);
        ParallelSpec spec = new ParallelSpec(2, ADAMW,
                ParallelSpec.BUCKET_ELEMENTS, other);
        Transformer model = new Transformer(MOE, DataType.FLOAT, 2, 4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Parallelize.apply(model, DeviceMesh.single(), spec, MemoryProbe.OFF));
        assertTrue(e.getMessage().contains("ZeRO stage 2"), e.getMessage());
    }
}
