package dev.tessera.worker.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.kernel.NativeMemory;
import dev.tessera.worker.checkpoint.Checkpoint;
import dev.tessera.worker.checkpoint.CheckpointWriter;
import dev.tessera.worker.model.FlatMemory;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.RecomputePolicy;
import dev.tessera.worker.model.Transformer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * How a ZeRO-3 rank builds its replica: in reserved flat buffers, initialisation and checkpoint loading write the
 * rank's shard and nothing else, with the bits a whole replica has there. Measured with {@code mincore}, page by
 * page, so a busy machine cannot change the answer: a page outside the shard that was ever written is resident.
 */
class ShardedBuildTest {

    /** 870 k parameters, about 850 pages of float32; the shard cuts tensors in their middles. */
    private static final ModelConfig CFG = new ModelConfig(256, 128, 4, 4, 352, 0, 0, 0, 0, 10000.0, 1e-5, 0.0, 64);

    @TempDir
    Path tmp;

    @Test
    void initialisationWritesOnlyTheShardWithTheWholeReplicasBits() {
        for (DataType dtype : new DataType[] {DataType.FLOAT, DataType.DOUBLE}) {
            Transformer whole = model(FlatMemory.ND4J, dtype);
            whole.initialize(42);
            Transformer rank = model(ReservedFlatMemory.INSTANCE, dtype);
            Shard shard = cut(rank);
            assertEquals(0, resident(rank.parameters().params()), "reserved pages cost nothing before use");
            rank.initialize(42, shard.from(), shard.to());

            assertOnlyShardResident(rank, shard, dtype + " initialisation");
            assertSameBits(whole.parameters().params(), rank.parameters().params(), shard, dtype + " initialisation");
        }
    }

    @Test
    void checkpointLoadWritesOnlyTheShard() {
        for (DataType dtype : new DataType[] {DataType.FLOAT, DataType.DOUBLE}) {
            Transformer whole = model(FlatMemory.ND4J, dtype);
            whole.initialize(7);
            Path dir = CheckpointWriter.write(tmp.resolve(dtype.toString()), 5, CFG, whole.parameters(), Map.of(),
                    trainerState(5));
            Transformer rank = model(ReservedFlatMemory.INSTANCE, dtype);
            Shard shard = cut(rank);
            Checkpoint.open(dir).loadParameters(rank.parameters(), shard);

            assertOnlyShardResident(rank, shard, dtype + " checkpoint load");
            assertSameBits(whole.parameters().params(), rank.parameters().params(), shard, dtype + " checkpoint load");
        }
    }

    private static Transformer model(FlatMemory memory, DataType dtype) {
        return new Transformer(CFG, dtype, 1, 8, memory, memory, RecomputePolicy.NONE);
    }

    /** A middle third of the buffer, cut off page and tensor boundaries. */
    private static Shard cut(Transformer model) {
        long n = model.parameters().numel();
        return new Shard(n / 3 + 7, 2 * n / 3 + 5);
    }

    private static void assertOnlyShardResident(Transformer model, Shard shard, String what) {
        long width = model.parameters().dataType().width();
        long params = resident(model.parameters().params());
        long shardBytes = shard.length() * width;
        // The shard's pages, the two it shares with its neighbours at most: nothing outside was written.
        assertTrue(params >= shardBytes && params <= shardBytes + 2 * PageMemory.PAGE,
                what + ": " + params + " bytes of parameters resident for a shard of " + shardBytes);
        assertEquals(0, resident(model.parameters().grads()), what + ": no gradient page was touched");
    }

    /** Compared after measuring: reading a page outside the shard maps the zero page. */
    private static void assertSameBits(INDArray expected, INDArray actual, Shard shard, String what) {
        for (long i = shard.from(); i < shard.to(); i++) {
            assertEquals(Double.doubleToRawLongBits(expected.getDouble(i)), Double.doubleToRawLongBits(actual.getDouble(i)),
                    what + ": element " + i);
        }
        assertEquals(0.0, actual.getDouble(shard.from() - 1), what + ": the element before the shard");
        assertEquals(0.0, actual.getDouble(shard.to()), what + ": the element after the shard");
    }

    private static long resident(INDArray flat) {
        return PageMemory.residentBytes(NativeMemory.address(flat), NativeMemory.byteSize(flat));
    }

    private static Map<String, Object> trainerState(long step) {
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("step", step);
        s.put("data_cursor", Map.of("epoch", 0, "next_step", step + 1));
        s.put("rng", "seed=1234");
        s.put("mesh", Map.of("dp", 1, "sp", 1, "ep", 1));
        s.put("job", Map.of("lr", 3e-4, "steps", 1000));
        return s;
    }
}
