package dev.tessera.worker.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.comm.UserInputException;
import dev.tessera.optimizers.AdafactorConfig;
import dev.tessera.optimizers.AdamWConfig;
import dev.tessera.optimizers.CAMEConfig;
import dev.tessera.optimizers.Optimizer;
import dev.tessera.optimizers.OptimizerSpec;
import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.ShardPlan;
import dev.tessera.optimizers.ShardReducer;
import dev.tessera.optimizers.StateSlice;
import dev.tessera.worker.model.ExpertShard;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.Transformer;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Expert parallelism and checkpoints: a rank's store holds the dense tensors and only its own experts (at offsets
 * of its own), yet a checkpoint is one consolidated Hugging Face model with all experts, which loads onto any other
 * expert partitioning, parameters and optimizer state alike.
 */
class ExpertParallelCheckpointTest {

    @TempDir
    Path run;

    private static final List<ModelConfig> CONFIGS = List.of(TinyModel.moe(), TinyModel.allMoe()); // Qwen2-MoE, Mixtral

    // ---- helpers -----------------------------------------------------------------------------------------------

    /** The expert index of an expert tensor ({@code ...experts.{e}.w1.weight}), else -1. */
    private static int expertOf(String name) {
        String marker = ".block_sparse_moe.experts.";
        int at = name.indexOf(marker);
        if (at < 0) {
            return -1;
        }
        int from = at + marker.length();
        return Integer.parseInt(name.substring(from, name.indexOf('.', from)));
    }

    /**
     * The store of expert-parallel rank {@code epRank} of {@code ep}: the full layout filtered to the rank's
     * contiguous experts (as Transformer lays an ep rank out), each tensor filled from its name alone.
     */
    static ParameterStore epStore(ModelConfig cfg, int epRank, int ep, DataType type) {
        int per = cfg.nExperts() / ep;
        return store(cfg, type, name -> {
            int e = expertOf(name);
            return e < 0 || e >= epRank * per && e < (epRank + 1) * per;
        });
    }

    static ParameterStore store(ModelConfig cfg, DataType type, Predicate<String> keep) {
        ParameterStore.Builder b = ParameterStore.builder();
        for (ParameterStore.Tensor t : Transformer.layout(cfg).tensors()) {
            if (keep.test(t.name())) {
                b.add(t.name(), t.shape());
            }
        }
        ParameterStore store = b.build(type);
        for (ParameterStore.Tensor t : store.tensors()) {
            for (long i = 0; i < t.numel(); i++) {
                store.params().putScalar(t.offset() + i, unit("param", t.name(), i));
            }
        }
        return store;
    }

    /** A value in [-1, 1) of (a, b, i) alone: the same wherever in which layout the element lies. */
    private static double unit(String a, String b, long i) {
        long z = a.hashCode() * 0x9E3779B97F4A7C15L + b.hashCode() * 0xC2B2AE3D27D4EB4FL + i * 0x165667B19E3779F9L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z ^= z >>> 31;
        return (z >>> 11) * 0x1p-53 * 2 - 1;
    }

    private static long[] bits(INDArray a) {
        INDArray flat = a.reshape(a.length());
        long[] out = new long[(int) a.length()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.dataType() == DataType.FLOAT ? Float.floatToRawIntBits(flat.getFloat(i))
                    : Double.doubleToRawLongBits(flat.getDouble(i));
        }
        return out;
    }

    private static OptimizerSpec spec(String name) {
        return new OptimizerSpec(name, AdamWConfig.defaults(), AdafactorConfig.defaults(), CAMEConfig.defaults());
    }

    /** {@code shards} ZeRO shards of {@code store} as {@code spec}'s plan cuts them (1: the whole buffer). */
    private static List<Shard> zero(OptimizerSpec spec, ParameterStore store, int shards) {
        long[] bounds = ShardPlan.bounds(store.spans(), store.numel(), shards,
                s -> spec.stateElements(store.spans(), s));
        List<Shard> out = new ArrayList<>();
        for (int i = 0; i < shards; i++) {
            out.add(new Shard(bounds[i], bounds[i + 1]));
        }
        return out;
    }

    private static Optimizer optimizer(OptimizerSpec spec, ParameterStore store, Shard shard) {
        return spec.create(store.params(), store.grads(), store.spans(), shard, ShardReducer.LOCAL);
    }

    /**
     * Fills optimizer state from what each element means, not where it lies: flat state (over the whole buffer) by
     * (state, tensor, element of the tensor), per-tensor state by (state, element of its full shape). So every
     * layout's state for the same model agrees, and replicated copies are equal.
     */
    private static Map<String, StateSlice> fill(Map<String, StateSlice> state, ParameterStore store) {
        state.forEach((name, s) -> {
            boolean flat = name.startsWith("adamw.");
            assertEquals(flat, s.fullShape().length == 1 && s.fullShape()[0] == store.numel(), name);
            for (long j = 0; j < s.data().length(); j++) {
                long g = s.from() + j;
                double v;
                if (flat) {
                    ParameterStore.Tensor t = tensorAt(store, g);
                    v = unit(name, t.name(), g - t.offset());
                } else {
                    v = unit(name, "", g);
                }
                s.data().putScalar(j, v);
            }
        });
        return state;
    }

    private static ParameterStore.Tensor tensorAt(ParameterStore store, long element) {
        for (ParameterStore.Tensor t : store.tensors()) {
            if (element >= t.offset() && element < t.end()) {
                return t;
            }
        }
        throw new IllegalArgumentException("element " + element);
    }

    private static Map<String, Object> trainerState(long step) {
        return Map.of("step", step);
    }

    /**
     * A checkpoint written as an expert-parallel job writes it: {@code dp * ep} ranks, rank r with rank {@code r % ep}'s
     * experts; the first expert group writes the model's parts into one staging folder, every rank its optimizer
     * state (replicated over the expert-data-parallel group); the index from the parts' headers, then the
     * coordinator's finish.
     */
    private Path writeEp(Path runDir, ModelConfig cfg, String optimizer, int ep, int dp, boolean everyOptimizer) {
        long step = 20;
        CheckpointWriter first = CheckpointWriter.stage(runDir, step, "ep");
        OptimizerSpec spec = spec(optimizer);
        for (int rank = 0; rank < ep * dp; rank++) {
            CheckpointWriter w = rank == 0 ? first : CheckpointWriter.attach(first.stagingDir(), step);
            ParameterStore store = epStore(cfg, rank % ep, ep, DataType.FLOAT);
            if (rank < ep) {
                w.writeExpertPart(cfg, store, rank, ep);
            }
            if (everyOptimizer || rank == 0) {
                Optimizer opt = optimizer(spec, store, Shard.whole(store.numel()));
                OptimizerShards.write(w, rank, fill(opt.state(), store), store);
            }
        }
        first.writeModelFiles(cfg, DataType.FLOAT, ep);
        return CheckpointWriter.finish(first.stagingDir(), step, trainerState(step));
    }

    /** The same model and state written whole by one process. */
    private Path writeFull(Path runDir, ModelConfig cfg, String optimizer) {
        ParameterStore full = epStore(cfg, 0, 1, DataType.FLOAT);
        Optimizer opt = optimizer(spec(optimizer), full, Shard.whole(full.numel()));
        return CheckpointWriter.write(runDir, 10, cfg, full, fill(opt.state(), full), trainerState(10));
    }

    private static void assertSameParameters(ParameterStore expected, ParameterStore actual) {
        for (ParameterStore.Tensor t : actual.tensors()) {
            assertArrayEquals(bits(expected.param(t.name())), bits(actual.param(t.name())), t.name());
        }
    }

    // ---- (a) parameters: a full model into expert-parallel ranks ------------------------------------------------

    @Test
    void aFullCheckpointLoadsIntoHalfAndQuarterExpertStores() {
        for (ModelConfig cfg : CONFIGS) {
            Path dir = writeFull(run.resolve("full-" + cfg.moeEvery()), cfg, OptimizerSpec.ADAMW);
            ParameterStore full = epStore(cfg, 0, 1, DataType.FLOAT);
            for (int ep : new int[] {2, 4}) {
                for (int r = 0; r < ep; r++) {
                    ParameterStore part = epStore(cfg, r, ep, DataType.FLOAT);
                    part.params().assign(0);
                    Checkpoint ck = Checkpoint.openToLoad(dir);
                    ck.loadParameters(part);
                    ck.verifyRest();
                    assertSameParameters(full, part);
                    assertTrue(part.tensors().size() < full.tensors().size());
                }
            }
        }
    }

    @Test
    void aZero3ShardOfAnExpertRankLoadsOnlyItsElements() {
        ModelConfig cfg = TinyModel.allMoe();
        Path dir = writeFull(run, cfg, OptimizerSpec.ADAMW);
        ParameterStore expected = epStore(cfg, 1, 2, DataType.FLOAT);
        ParameterStore part = epStore(cfg, 1, 2, DataType.FLOAT);
        part.params().assign(0);
        Shard kept = new Shard(part.numel() / 3, 2 * part.numel() / 3);
        Checkpoint ck = Checkpoint.openToLoad(dir);
        ck.loadParameters(part, kept);
        ck.verifyRest();
        long[] want = bits(expected.params());
        long[] got = bits(part.params());
        for (int i = 0; i < want.length; i++) {
            assertEquals(i >= kept.from() && i < kept.to() ? want[i] : 0L, got[i], "element " + i);
        }
    }

    // ---- (b) parameters: expert-parallel ranks write one consolidated model ------------------------------------

    @Test
    void expertRanksWriteOneConsolidatedModelThatLoadsWholeBitIdentically() throws IOException {
        for (ModelConfig cfg : CONFIGS) {
            for (int ep : new int[] {2, 4}) {
                Path dir = writeEp(run.resolve("ep" + ep + "-" + cfg.moeEvery()), cfg, OptimizerSpec.ADAMW, ep, 1, true);
                Checkpoint ck = Checkpoint.open(dir); // the manifest lists, and verifies, every rank's file
                Path reference = writeFull(run.resolve("ref" + ep + "-" + cfg.moeEvery()), cfg, OptimizerSpec.ADAMW);
                assertEquals(Checkpoint.open(reference).weightMap().keySet(), ck.weightMap().keySet());
                Set<String> files = new TreeSet<>(ck.weightMap().values());
                assertEquals(ep, files.size());
                // Every tensor, zero fillers included, is in exactly one file, and the index says which.
                Map<String, String> seen = new HashMap<>();
                for (String file : files) {
                    try (SafeTensorsReader reader = SafeTensors.open(dir.resolve(file))) {
                        for (SafeTensors.Entry e : reader.entries()) {
                            assertEquals(null, seen.put(e.name(), file), e.name());
                        }
                    }
                }
                assertEquals(ck.weightMap(), seen);
                HfArchitecture.of(cfg).zeroFillers(cfg).keySet().forEach(f -> assertTrue(seen.containsKey(f), f));

                ParameterStore full = epStore(cfg, 0, 1, DataType.FLOAT);
                ParameterStore loaded = epStore(cfg, 0, 1, DataType.FLOAT);
                loaded.params().assign(0);
                ck.loadParameters(loaded);
                assertArrayEquals(bits(full.params()), bits(loaded.params()));
                ParameterStore half = epStore(cfg, 1, 2, DataType.FLOAT);
                half.params().assign(0);
                ck.loadParameters(half);
                assertSameParameters(full, half);
            }
        }
    }

    @Test
    void aFileHoldingOnlyOtherRanksExpertsIsStillHashedByVerifyRest() throws IOException {
        ModelConfig cfg = TinyModel.allMoe();
        Path dir = writeEp(run, cfg, OptimizerSpec.ADAMW, 2, 1, true);
        String othersPart = CheckpointLayout.modelShard(1, 2); // experts 2 and 3 only
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve(othersPart).toFile(), "rw")) {
            f.seek(f.length() - 3);
            int b = f.read();
            f.seek(f.length() - 3);
            f.write(b ^ 0x10);
        }
        ParameterStore quarter = epStore(cfg, 0, 4, DataType.FLOAT);
        Checkpoint ck = Checkpoint.openToLoad(dir);
        ck.loadParameters(quarter); // reads only the file with expert 0 and the dense tensors
        UserInputException e = assertThrows(UserInputException.class, ck::verifyRest);
        assertTrue(e.getMessage().contains(othersPart) && e.getMessage().contains("SHA-256 mismatch"), e.getMessage());
    }

    @Test
    void anIndexOverPartsThatLackExpertsIsRefusedBeforeTheCommit() {
        ModelConfig cfg = TinyModel.allMoe();
        CheckpointWriter w = CheckpointWriter.stage(run, 5, "short");
        w.writeExpertPart(cfg, epStore(cfg, 0, 2, DataType.FLOAT), 0, 2);
        IllegalStateException missing = assertThrows(IllegalStateException.class,
                () -> w.writeModelFiles(cfg, DataType.FLOAT, 2));
        assertTrue(missing.getMessage().contains(CheckpointLayout.modelShard(1, 2)), missing.getMessage());

        // The second rank wrote the first rank's experts again: experts 2 and 3 are nowhere.
        w.writeModelPart(cfg, epStore(cfg, 0, 2, DataType.FLOAT), ExpertShard::isExpertTensor, 1, 2);
        IllegalStateException twice = assertThrows(IllegalStateException.class,
                () -> w.writeModelFiles(cfg, DataType.FLOAT, 2));
        assertTrue(twice.getMessage().contains("model.layers.0.block_sparse_moe.experts.0.w1.weight")
                && twice.getMessage().contains("more than one"), twice.getMessage());

        w.writeModelPart(cfg, epStore(cfg, 0, 2, DataType.FLOAT), name -> false, 1, 2);
        IllegalStateException lacking = assertThrows(IllegalStateException.class,
                () -> w.writeModelFiles(cfg, DataType.FLOAT, 2));
        assertTrue(lacking.getMessage().contains("model.layers.0.block_sparse_moe.experts.2.w1.weight"),
                lacking.getMessage());
        w.abort();
    }

    // ---- (c) optimizer state across expert partitionings -------------------------------------------------------

    @ParameterizedTest
    @ValueSource(strings = {OptimizerSpec.ADAMW, OptimizerSpec.CAME, OptimizerSpec.ADAFACTOR})
    void optimizerStateOfExpertRanksLoadsIntoTheFullLayoutAndBack(String name) {
        OptimizerSpec spec = spec(name);
        for (ModelConfig cfg : CONFIGS) {
            // Written by 2 expert ranks, each replicated twice (dp 2): into the full layout, whole and as ZeRO shards.
            Checkpoint fromEp = Checkpoint.open(writeEp(run.resolve(name + "-ep-" + cfg.moeEvery()), cfg, name, 2, 2,
                    true));
            assertEquals(4, fromEp.optimizerRanks());
            ParameterStore full = epStore(cfg, 0, 1, DataType.FLOAT);
            for (int zero : new int[] {1, 2}) {
                for (Shard shard : zero(spec, full, zero)) {
                    assertLoads(fromEp, spec, full, shard, name + " ep2 -> full " + shard);
                }
            }
            // Written whole: into quarter- and half-expert ranks, whole and as ZeRO shards.
            Checkpoint fromFull = Checkpoint.open(writeFull(run.resolve(name + "-full-" + cfg.moeEvery()), cfg, name));
            for (int ep : new int[] {4, 2}) {
                for (int r = 0; r < ep; r++) {
                    ParameterStore part = epStore(cfg, r, ep, DataType.FLOAT);
                    for (int zero : new int[] {1, 2}) {
                        for (Shard shard : zero(spec, part, zero)) {
                            assertLoads(fromFull, spec, part, shard, name + " full -> ep" + ep + " rank " + r + " " + shard);
                            assertLoads(fromEp, spec, part, shard, name + " ep2 -> ep" + ep + " rank " + r + " " + shard);
                        }
                    }
                }
            }
        }
    }

    /** Loads into a zeroed optimizer over {@code store}'s {@code shard}: every state bit as a filled one has it. */
    private static void assertLoads(Checkpoint ck, OptimizerSpec spec, ParameterStore store, Shard shard, String what) {
        Map<String, StateSlice> expected = fill(optimizer(spec, store, shard).state(), store);
        Map<String, StateSlice> loaded = optimizer(spec, store, shard).state();
        assertFalse(loaded.isEmpty(), what);
        loaded.values().forEach(s -> s.data().assign(0));
        OptimizerShards.load(ck, loaded, store);
        assertEquals(expected.keySet(), loaded.keySet());
        expected.forEach((k, s) -> assertArrayEquals(bits(s.data()), bits(loaded.get(k).data()), what + ": " + k));
    }

    // ---- (d) what is still refused -----------------------------------------------------------------------------

    @Test
    void aStoreWithATensorTheCheckpointLacksIsStillRefusedNamingIt() {
        ModelConfig cfg = TinyModel.allMoe();
        Path dir = writeEp(run, cfg, OptimizerSpec.ADAMW, 2, 1, true);
        // An expert the checkpoint's model does not have (experts 4..7 of an 8-expert model).
        ModelConfig wider = new ModelConfig(cfg.vocabSize(), cfg.dModel(), cfg.nLayers(), cfg.nHeads(), cfg.dFF(), 8,
                cfg.topK(), cfg.moeEvery(), cfg.expertDFF(), cfg.ropeTheta(), cfg.normEps(), cfg.auxCoef(),
                cfg.maxSeqLen());
        ParameterStore other = epStore(wider, 1, 2, DataType.FLOAT);
        UserInputException e = assertThrows(UserInputException.class, () -> Checkpoint.open(dir).loadParameters(other));
        assertTrue(e.getMessage().contains("has no tensor model.layers.0.block_sparse_moe.experts.4.w1.weight"),
                e.getMessage());

        // A tensor of the checkpoint that is not an expert is still one the store must have.
        ParameterStore noNorm = store(cfg, DataType.FLOAT, n -> !n.equals("model.norm.weight"));
        UserInputException dense = assertThrows(UserInputException.class,
                () -> Checkpoint.open(dir).loadParameters(noNorm));
        assertTrue(dense.getMessage().contains("has tensor model.norm.weight that the model lacks"), dense.getMessage());
    }

    @Test
    void optimizerStateOfATensorNoFileHoldsIsRefusedNamingIt() {
        ModelConfig cfg = TinyModel.allMoe();
        for (String name : List.of(OptimizerSpec.ADAMW, OptimizerSpec.CAME)) {
            // Only expert rank 0 wrote optimizer state: experts 2 and 3 are in no file.
            Checkpoint ck = Checkpoint.open(writeEp(run.resolve(name), cfg, name, 2, 1, false));
            assertEquals(1, ck.optimizerRanks());
            ParameterStore full = epStore(cfg, 0, 1, DataType.FLOAT);
            Map<String, StateSlice> into = optimizer(spec(name), full, Shard.whole(full.numel())).state();
            UserInputException e = assertThrows(UserInputException.class, () -> OptimizerShards.load(ck, into, full));
            String expected = name.equals(OptimizerSpec.ADAMW)
                    ? "of optimizer state adamw.exp_avg, those of tensors model.layers.0.block_sparse_moe.experts.2.w1.weight"
                    : "of optimizer state came.model.layers.0.block_sparse_moe.experts.2.w1.weight";
            assertTrue(e.getMessage().contains(expected), e.getMessage());
            // Rank 0's own experts are all there.
            ParameterStore half = epStore(cfg, 0, 2, DataType.FLOAT);
            OptimizerShards.load(ck, optimizer(spec(name), half, Shard.whole(half.numel())).state(), half);
        }
    }

    @Test
    void optimizerStateOfAnotherModelIsStillRefused() {
        ModelConfig cfg = TinyModel.allMoe();
        Checkpoint ck = Checkpoint.open(writeFull(run, cfg, OptimizerSpec.CAME));
        ModelConfig wider = new ModelConfig(cfg.vocabSize(), cfg.dModel(), cfg.nLayers(), cfg.nHeads(), cfg.dFF(),
                cfg.nExperts(), cfg.topK(), cfg.moeEvery(), cfg.expertDFF() + 2, cfg.ropeTheta(), cfg.normEps(),
                cfg.auxCoef(), cfg.maxSeqLen());
        ParameterStore other = epStore(wider, 0, 2, DataType.FLOAT);
        UserInputException e = assertThrows(UserInputException.class, () -> OptimizerShards.load(ck,
                optimizer(spec(OptimizerSpec.CAME), other, Shard.whole(other.numel())).state(), other));
        assertTrue(e.getMessage().contains("of shape") && e.getMessage().contains("experts.0.w1.weight"), e.getMessage());

        Checkpoint adam = Checkpoint.open(writeFull(run.resolve("adam"), cfg, OptimizerSpec.ADAMW));
        UserInputException flat = assertThrows(UserInputException.class, () -> OptimizerShards.load(adam,
                optimizer(spec(OptimizerSpec.ADAMW), other, Shard.whole(other.numel())).state(), other));
        assertTrue(flat.getMessage().contains("over tensor model.layers.0.block_sparse_moe.experts.0.w1.weight of 48"
                + " elements, where this model's has 64"), flat.getMessage());
    }
}
