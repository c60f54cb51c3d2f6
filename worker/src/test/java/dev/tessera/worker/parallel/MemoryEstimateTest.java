package dev.tessera.worker.parallel;

import dev.tessera.comm.InProcessComms;
import dev.tessera.optimizers.AdamWConfig;
import dev.tessera.optimizers.OptimizerSpec;
import dev.tessera.optimizers.kernel.KernelThreads;
import dev.tessera.worker.model.ExpertShard;
import dev.tessera.worker.model.FlatMemory;
import dev.tessera.worker.model.ModelShard;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.RecomputePolicy;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.Transformer;
import java.math.BigInteger;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MemoryEstimateTest {

    private static final ModelConfig MOE = new ModelConfig(256, 32, 2, 4, 64, 4, 2, 2, 32, 10000.0, 1e-5, 0.01, 16);

    /** The issue's config: the parameter count overflowed long and wrapped to a size that passed planning. */
    private static final ModelConfig HUGE = new ModelConfig(256, 2147463584, 4, 4, 715885514, 4, 2, 2, 172,
            10000.0, 1e-5, 0.01, 16);

    private static final OptimizerSpec ADAMW = new OptimizerSpec(OptimizerSpec.ADAMW, AdamWConfig.defaults(), null,
            null);

    private static MemoryEstimate.Job job(ModelConfig cfg, DataType dt, Mesh mesh, int batch, int seq, int zero,
                                          RecomputePolicy recompute) {
        return new MemoryEstimate.Job(cfg, dt, mesh, batch, seq, ADAMW, zero, recompute, KernelThreads.THREADS);
    }

    @Test
    void parametersAreCountedExactlyFromTheLayout() {
        long numel = new Transformer(MOE, DataType.FLOAT, 2, 16).parameters().numel();
        MemoryEstimate e = MemoryEstimate.of(job(MOE, DataType.FLOAT, Mesh.SINGLE, 2, 16, 0, RecomputePolicy.NONE));
        assertEquals(BigInteger.valueOf(numel * 4), e.paramBytes());
        assertEquals(BigInteger.valueOf(numel * 4), e.gradBytes());
        assertEquals(BigInteger.valueOf(numel * 8), e.optimizerStateBytes());
        assertEquals(Optional.empty(), MemoryEstimate.firstOversized(MOE, 4, Mesh.SINGLE, 2, 16));
    }

    @Test
    void expertParallelismDividesOnlyExpertParameters() {
        MemoryEstimate one = MemoryEstimate.of(job(MOE, DataType.FLOAT, new Mesh(2, 1, 1), 4, 16, 0,
                RecomputePolicy.NONE));
        MemoryEstimate split = MemoryEstimate.of(job(MOE, DataType.FLOAT, new Mesh(2, 1, 2), 4, 16, 0,
                RecomputePolicy.NONE));
        long expertBytes = 4L * 3 * 32 * 32 * 4; // 4 experts x (w1, w2, w3) of 32x32 floats, in the one MoE block
        assertEquals(one.paramBytes().subtract(BigInteger.valueOf(expertBytes / 2)), split.paramBytes());
    }

    /**
     * The activation term is every buffer the model takes, byte for byte: dense and MoE blocks, both dtypes, with
     * and without recomputation, and data parallelism's share of the batch.
     */
    @ParameterizedTest
    @CsvSource({"FLOAT,0,1", "FLOAT,1,1", "FLOAT,2,1", "DOUBLE,0,1", "DOUBLE,1,1", "FLOAT,0,2", "FLOAT,3,2",
            "DOUBLE,2,2"})
    void activationsAreWhatTheModelAllocates(DataType dt, int every, int dp) {
        for (ModelConfig cfg : List.of(MOE, ModelConfig.dense(256, 32, 3, 4, 48, 16),
                new ModelConfig(256, 32, 3, 4, 64, 4, 1, 1, 24, 10000.0, 1e-5, 0.01, 24))) {
            int batch = 4;
            int seq = cfg.maxSeqLen();
            long built = new Transformer(cfg, dt, batch / dp, seq, FlatMemory.ND4J, new RecomputePolicy(every))
                    .activationBytes();
            assertEquals(BigInteger.valueOf(built), MemoryEstimate.activationBytes(
                    job(cfg, dt, new Mesh(dp, 1, 1), batch, seq, 0, new RecomputePolicy(every))), cfg + " " + dt);
        }
    }

    /**
     * Under sequence parallelism too, for each scheme: two ranks in this JVM build their models (the schemes
     * allocate symmetric memory collectively) and each holds exactly the activations the planner counts.
     */
    @Test
    void sequenceParallelActivationsAreWhatTheModelAllocates() throws Exception {
        ModelConfig cfg = new ModelConfig(256, 32, 3, 4, 64, 4, 2, 2, 24, 10000.0, 1e-5, 0.01, 32);
        String job = "memsp" + ProcessHandle.current().pid();
        try (InProcessComms comms = InProcessComms.connect(job, 2, 54000 + (int) (ProcessHandle.current().pid() % 500) * 2)) {
            ExecutorService threads = Executors.newFixedThreadPool(2);
            try {
                for (SequenceScheme scheme : SequenceScheme.values()) {
                    for (DataType dt : new DataType[] {DataType.FLOAT, DataType.DOUBLE}) {
                        for (int every : new int[] {0, 1}) {
                            List<Future<Long>> built = new java.util.ArrayList<>();
                            for (int r = 0; r < 2; r++) {
                                int rank = r;
                                built.add(threads.submit(() -> {
                                    DeviceMesh mesh = DeviceMesh.create(comms.get(rank), new Mesh(1, 2, 1));
                                    ParallelSpec spec = ParallelSpec.of(0, ADAMW).withSequence(scheme);
                                    ModelShard shard = new ModelShard(ExpertShard.all(cfg.nExperts()),
                                            Parallelize.sequenceShard(mesh, spec, 32));
                                    return new Transformer(cfg, dt, 2, FlatMemory.ND4J, FlatMemory.ND4J,
                                            new RecomputePolicy(every), shard).activationBytes();
                                }));
                            }
                            MemoryEstimate.Job planned = new MemoryEstimate.Job(cfg, dt, new Mesh(1, 2, 1), 2, 32,
                                    ADAMW, 0, new RecomputePolicy(every), KernelThreads.THREADS, scheme);
                            for (Future<Long> b : built) {
                                assertEquals(BigInteger.valueOf(b.get(60, TimeUnit.SECONDS)),
                                        MemoryEstimate.activationBytes(planned), scheme + " " + dt + " every " + every);
                            }
                        }
                    }
                }
            } finally {
                threads.shutdownNow();
            }
        }
    }

    @Test
    void recomputingEveryBlockKeepsOneBlocksActivations() {
        ModelConfig cfg = ModelConfig.dense(256, 64, 8, 4, 172, 64);
        BigInteger none = MemoryEstimate.activationBytes(job(cfg, DataType.FLOAT, Mesh.SINGLE, 8, 64, 0,
                RecomputePolicy.NONE));
        BigInteger blocks = MemoryEstimate.activationBytes(job(cfg, DataType.FLOAT, Mesh.SINGLE, 8, 64, 0,
                RecomputePolicy.EVERY_BLOCK));
        assertTrue(none.compareTo(blocks.multiply(BigInteger.valueOf(3))) > 0, none + " vs " + blocks);
    }

    @Test
    void zeroShardsWhatEachStageSays() {
        ModelConfig cfg = ModelConfig.dense(256, 512, 4, 8, 1376, 64);
        Mesh dp4 = new Mesh(4, 1, 1);
        MemoryEstimate[] stage = new MemoryEstimate[4];
        for (int s = 0; s < 4; s++) {
            stage[s] = MemoryEstimate.of(job(cfg, DataType.FLOAT, dp4, 8, 64, s, RecomputePolicy.NONE));
        }
        assertTrue(stage[1].optimizerStateBytes().multiply(BigInteger.valueOf(3))
                .compareTo(stage[0].optimizerStateBytes()) < 0);
        assertEquals(stage[0].gradBytes(), stage[1].gradBytes());
        assertTrue(stage[2].gradBytes().compareTo(stage[1].gradBytes()) < 0);
        assertEquals(stage[0].paramBytes(), stage[2].paramBytes());
        assertTrue(stage[3].paramBytes().compareTo(stage[2].paramBytes()) < 0);
        assertEquals(stage[1].activationBytes(), stage[3].activationBytes());
    }

    @Test
    void sizesBeyondLongAreExactNotWrapped() {
        MemoryEstimate e = MemoryEstimate.of(job(HUGE, DataType.FLOAT, Mesh.SINGLE, 8, 16, 0, RecomputePolicy.NONE));
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
