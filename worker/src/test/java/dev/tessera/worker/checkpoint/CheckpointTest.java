package dev.tessera.worker.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.comm.UserInputException;
import dev.tessera.optimizers.StateSlice;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

class CheckpointTest {

    @TempDir
    Path run;

    private static Map<String, StateSlice> optimizerState(ParameterStore store, long seed) {
        Nd4j.getRandom().setSeed(seed);
        Map<String, StateSlice> state = new LinkedHashMap<>();
        state.put("exp_avg", whole(Nd4j.rand(store.dataType(), store.numel())));
        state.put("exp_avg_sq", whole(Nd4j.rand(store.dataType(), 4, store.numel() / 4)));
        state.put("step", whole(Nd4j.createFromArray(new long[] {100})));
        return state;
    }

    private static StateSlice whole(INDArray a) {
        return new StateSlice(a.reshape(a.length()), a.shape(), 0);
    }

    /** Elements [from, to) of {@code full}'s flattening, as a rank that owns them holds them. */
    private static StateSlice part(INDArray full, long from, long to) {
        return new StateSlice(full.reshape(full.length()).get(NDArrayIndex.interval(from, to)).dup(), full.shape(), from);
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

    private Path save(long step, ModelConfig cfg, ParameterStore store) {
        return CheckpointWriter.write(run, step, cfg, store, optimizerState(store, step), trainerState(step));
    }

    @Test
    void roundTripsFloat32AndFloat64BitExactly() {
        for (DataType type : new DataType[] {DataType.FLOAT, DataType.DOUBLE}) {
            for (ModelConfig cfg : new ModelConfig[] {TinyModel.dense(), TinyModel.moe(), TinyModel.allMoe()}) {
                Path runDir = run.resolve(type + "-" + cfg.nExperts() + "-" + cfg.moeEvery());
                ParameterStore store = TinyModel.store(cfg, type, 7);
                Map<String, StateSlice> opt = optimizerState(store, 3);
                Path dir = CheckpointWriter.write(runDir, 100, cfg, store, opt, trainerState(100));
                assertEquals(runDir.resolve("checkpoints/step-0000100"), dir);

                Checkpoint ck = Checkpoint.open(dir);
                assertEquals(100, ck.step());
                assertEquals(cfg, ck.modelConfig());
                assertEquals(type, ck.dataType());
                assertEquals(100, ((Number) ck.trainerState().get("step")).longValue());
                assertEquals(Map.of("dp", 1, "sp", 1, "ep", 1), ck.trainerState().get("mesh"));

                ParameterStore loaded = TinyModel.store(cfg, type, 99);
                ck.loadParameters(loaded);
                assertTrue(bitEqual(store.params(), loaded.params()), type + " parameters bit-exact");

                Map<String, StateSlice> into = new LinkedHashMap<>();
                opt.forEach((k, v) -> into.put(k, new StateSlice(Nd4j.zeros(v.data().dataType(), v.data().length()),
                        v.fullShape(), 0)));
                OptimizerShards.load(ck, into, loaded);
                opt.forEach((k, v) -> assertTrue(bitEqual(v.data(), into.get(k).data()), k));
                assertEquals(1, ck.optimizerRanks());
                assertEquals(0, ((Number) ck.optimizerMetadata(0).get("rank")).intValue());
                assertEquals(100, ((Number) ck.optimizerMetadata(0).get("step")).intValue());
            }
        }
    }

    private static boolean bitEqual(INDArray a, INDArray b) {
        if (a.dataType() != b.dataType() || a.length() != b.length()) {
            return false;
        }
        INDArray fa = a.reshape(a.length());
        INDArray fb = b.reshape(b.length());
        for (long i = 0; i < a.length(); i++) {
            boolean same = a.dataType() == DataType.FLOAT
                    ? Float.floatToRawIntBits(fa.getFloat(i)) == Float.floatToRawIntBits(fb.getFloat(i))
                    : a.dataType() == DataType.DOUBLE
                    ? Double.doubleToRawLongBits(fa.getDouble(i)) == Double.doubleToRawLongBits(fb.getDouble(i))
                    : fa.getLong(i) == fb.getLong(i);
            if (!same) {
                return false;
            }
        }
        return true;
    }

    @Test
    void writesHuggingFaceConfigAndIndex() throws IOException {
        ModelConfig cfg = TinyModel.allMoe();
        ParameterStore store = TinyModel.store(cfg, DataType.FLOAT, 1);
        Path dir = save(5, cfg, store);
        JsonNode config = Json.MAPPER.readTree(dir.resolve("config.json").toFile());
        assertEquals("MixtralForCausalLM", config.get("architectures").get(0).asText());
        assertEquals("mixtral", config.get("model_type").asText());
        assertEquals(8, config.get("hidden_size").asInt());
        assertEquals(6, config.get("intermediate_size").asInt(), "Mixtral's intermediate_size is the expert width");
        assertEquals(2, config.get("num_key_value_heads").asInt());
        assertEquals(4, config.get("num_local_experts").asInt());
        assertEquals(2, config.get("num_experts_per_tok").asInt());
        assertFalse(config.get("tie_word_embeddings").asBoolean());
        assertEquals("float32", config.get("torch_dtype").asText());

        JsonNode dense = HfModelConfig.toJson(TinyModel.dense(), DataType.DOUBLE);
        assertEquals("LlamaForCausalLM", dense.get("architectures").get(0).asText());
        assertEquals(12, dense.get("intermediate_size").asInt());
        assertEquals("float64", dense.get("torch_dtype").asText());

        JsonNode index = Json.MAPPER.readTree(dir.resolve("model.safetensors.index.json").toFile());
        assertEquals(store.numel() * 4, index.get("metadata").get("total_size").asLong());
        JsonNode map = index.get("weight_map");
        assertEquals(store.tensors().size(), map.size());
        for (ParameterStore.Tensor t : store.tensors()) {
            assertEquals("model-00001-of-00001.safetensors", map.get(t.name()).asText(), t.name());
        }
        assertTrue(map.has("model.layers.1.block_sparse_moe.experts.3.w2.weight"));
        try (SafeTensorsReader r = SafeTensors.open(dir.resolve("model-00001-of-00001.safetensors"))) {
            assertEquals("pt", r.metadata().get("format"));
            assertEquals(List.of(8L, 6L), List.of(r.entry("model.layers.1.block_sparse_moe.experts.3.w2.weight").shape()[0],
                    r.entry("model.layers.1.block_sparse_moe.experts.3.w2.weight").shape()[1]));
        }
        assertTrue(Files.isRegularFile(dir.resolve("optimizer/rank-00000.safetensors")));
    }

    @Test
    void manifestListsEveryOtherFileWithItsHash() throws IOException {
        Path dir = save(1, TinyModel.dense(), TinyModel.store(TinyModel.dense(), DataType.FLOAT, 1));
        JsonNode files = Json.MAPPER.readTree(dir.resolve("manifest.json").toFile()).get("files");
        List<String> onDisk;
        try (Stream<Path> walk = Files.walk(dir)) {
            onDisk = walk.filter(Files::isRegularFile).map(p -> dir.relativize(p).toString().replace('\\', '/'))
                    .filter(n -> !n.equals("manifest.json")).sorted().collect(Collectors.toList());
        }
        List<String> listed = new ArrayList<>();
        files.fieldNames().forEachRemaining(listed::add);
        assertEquals(onDisk, listed);
        for (String name : listed) {
            assertEquals(Files.size(dir.resolve(name)), files.get(name).get("size").asLong());
            assertEquals(Manifest.sha256(dir.resolve(name)), files.get(name).get("sha256").asText());
        }
    }

    @Test
    void nothingIsVisibleBeforeCommitAndTheManifestComesLast() {
        ModelConfig cfg = TinyModel.dense();
        ParameterStore store = TinyModel.store(cfg, DataType.FLOAT, 1);
        CheckpointWriter w = CheckpointWriter.stage(run, 42);
        w.writeOptimizerShard(0, Map.of("exp_avg", store.params()), Map.of("zero_stage", 1));
        Map<String, INDArray> all = new LinkedHashMap<>();
        store.tensors().forEach(t -> all.put(t.name(), store.param(t.name())));
        CheckpointWriter.ModelShard shard = w.writeModelShard(0, 1, all);
        w.writeConfig(cfg, DataType.FLOAT);
        w.writeModelIndex(List.of(shard));
        w.writeTrainerState(trainerState(42));
        assertFalse(Files.exists(w.stagingDir().resolve("manifest.json")), "manifest not before commit");
        assertFalse(Files.exists(run.resolve("checkpoints/step-0000042")));
        assertEquals(Optional.empty(), Checkpoint.latest(run));
        Path dir = w.commit();
        assertFalse(Files.exists(w.stagingDir()));
        assertEquals(Optional.of(dir), Checkpoint.latest(run));
        assertEquals(1, ((Number) Checkpoint.open(dir).optimizerMetadata(0).get("zero_stage")).intValue());
    }

    @Test
    void corruptByteIsRefusedNamingTheFile() throws IOException {
        Path dir = save(100, TinyModel.dense(), TinyModel.store(TinyModel.dense(), DataType.FLOAT, 1));
        Path shard = dir.resolve("model-00001-of-00001.safetensors");
        byte[] bytes = Files.readAllBytes(shard);
        bytes[bytes.length / 2] ^= 0x01;
        Files.write(shard, bytes);
        assertRefused(dir, "model-00001-of-00001.safetensors: SHA-256 mismatch (file corrupted)");
    }

    @Test
    void missingManifestIsRefused() throws IOException {
        Path dir = save(100, TinyModel.dense(), TinyModel.store(TinyModel.dense(), DataType.FLOAT, 1));
        Files.delete(dir.resolve("manifest.json"));
        assertRefused(dir, "is incomplete: manifest.json missing (an interrupted write?)");
    }

    @Test
    void truncatedOrMissingFileIsRefused() throws IOException {
        Path dir = save(100, TinyModel.dense(), TinyModel.store(TinyModel.dense(), DataType.FLOAT, 1));
        Path opt = dir.resolve("optimizer/rank-00000.safetensors");
        byte[] bytes = Files.readAllBytes(opt);
        Files.write(opt, java.util.Arrays.copyOf(bytes, bytes.length - 10));
        assertRefused(dir, "optimizer/rank-00000.safetensors has " + (bytes.length - 10) + " bytes but the manifest says " + bytes.length);
        Files.delete(opt);
        assertRefused(dir, "is incomplete: optimizer/rank-00000.safetensors missing");
    }

    @Test
    void latestSkipsLeftoversAndBrokenCheckpoints() throws IOException {
        ModelConfig cfg = TinyModel.dense();
        ParameterStore store = TinyModel.store(cfg, DataType.FLOAT, 1);
        Path first = save(100, cfg, store);
        Path second = save(200, cfg, store);
        assertEquals(Optional.of(second), Checkpoint.latest(run));

        // An interrupted write of step 300: a staging folder with everything but the manifest.
        CheckpointWriter w = CheckpointWriter.stage(run, 300);
        w.writeConfig(cfg, DataType.FLOAT);
        w.writeTrainerState(trainerState(300));
        // A step folder without manifest (e.g. copied by hand, half done) is not a checkpoint either.
        Files.createDirectories(run.resolve("checkpoints/step-0000400"));
        assertEquals(Optional.of(second), Checkpoint.latest(run));
        assertEquals(second, Checkpoint.open(run).dir(), "a run folder opens its newest complete checkpoint");

        Files.write(second.resolve("trainer_state.json"), "{}".getBytes());
        assertEquals(Optional.of(first), Checkpoint.latest(run), "a corrupt newest checkpoint falls back to the previous");
        assertEquals(100, Checkpoint.open(run).step());
        w.abort();
        assertFalse(Files.exists(w.stagingDir()));
    }

    @Test
    void latestNamesEachCheckpointItSkipsAndWhy() throws IOException {
        ModelConfig cfg = TinyModel.dense();
        ParameterStore store = TinyModel.store(cfg, DataType.FLOAT, 1);
        Path first = save(100, cfg, store);
        Path second = save(200, cfg, store);
        Path weights = second.resolve("model-00001-of-00001.safetensors");
        byte[] bytes = Files.readAllBytes(weights);
        bytes[bytes.length - 1] ^= 1;
        Files.write(weights, bytes);

        List<String> lines = new ArrayList<>();
        assertEquals(Optional.of(first), Checkpoint.latest(run, lines::add));
        assertEquals(1, lines.size(), lines.toString());
        assertTrue(lines.get(0).contains(second.toString()) && lines.get(0).contains("SHA-256 mismatch"), lines.get(0));
        lines.clear();
        assertEquals(first, Checkpoint.open(run, lines::add).dir());
        assertEquals(1, lines.size(), lines.toString());
    }

    @Test
    void nonFiniteWeightsAreRefusedOnLoadNamingTheCheckpointAndTensor() {
        ModelConfig cfg = TinyModel.dense();
        for (double bad : new double[] {Double.NaN, Double.POSITIVE_INFINITY}) {
            ParameterStore store = TinyModel.store(cfg, DataType.FLOAT, 1);
            ParameterStore.Tensor victim = store.tensors().get(store.tensors().size() / 2);
            store.param(victim.name()).putScalar(3, bad);
            Path dir = CheckpointWriter.write(run.resolve("bad-" + bad), 100, cfg, store, optimizerState(store, 1),
                    trainerState(100));
            Checkpoint ck = Checkpoint.open(dir);
            UserInputException e = assertThrows(UserInputException.class,
                    () -> ck.loadParameters(TinyModel.store(cfg, DataType.FLOAT, 2)));
            assertTrue(e.getMessage().contains(dir.toString()) && e.getMessage().contains(victim.name())
                    && e.getMessage().contains(Double.toString((float) bad)), e.getMessage());
        }
    }

    @Test
    void rewritingAStepReplacesIt() {
        ModelConfig cfg = TinyModel.dense();
        save(100, cfg, TinyModel.store(cfg, DataType.FLOAT, 1));
        ParameterStore newer = TinyModel.store(cfg, DataType.FLOAT, 2);
        Path dir = save(100, cfg, newer);
        ParameterStore loaded = TinyModel.store(cfg, DataType.FLOAT, 3);
        Checkpoint.open(dir).loadParameters(loaded);
        assertEquals(newer.params(), loaded.params());
        try (Stream<Path> list = Files.list(run.resolve("checkpoints"))) {
            assertEquals(List.of("step-0000100"), list.map(p -> p.getFileName().toString()).collect(Collectors.toList()));
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void mismatchedModelOrOptimizerIsRefusedNamingTheTensor() {
        Path dir = save(100, TinyModel.dense(), TinyModel.store(TinyModel.dense(), DataType.FLOAT, 1));
        Checkpoint ck = Checkpoint.open(dir);
        ParameterStore moe = TinyModel.store(TinyModel.moe(), DataType.FLOAT, 1);
        UserInputException e = assertThrows(UserInputException.class, () -> ck.loadParameters(moe));
        assertTrue(e.getMessage().contains("has no tensor model.layers.1.block_sparse_moe.gate.weight"), e.getMessage());

        ModelConfig wider = new ModelConfig(32, 8, 2, 2, 16, 0, 0, 0, 0, 10000.0, 1e-5, 0.0, 16);
        e = assertThrows(UserInputException.class, () -> ck.loadParameters(TinyModel.store(wider, DataType.FLOAT, 1)));
        assertTrue(e.getMessage().contains("mlp.") && e.getMessage().contains("has shape [12, 8]"), e.getMessage());

        ParameterStore same = TinyModel.store(TinyModel.dense(), DataType.FLOAT, 1);
        Map<String, StateSlice> wrong = Map.of("momentum", whole(Nd4j.zeros(DataType.FLOAT, 3)));
        e = assertThrows(UserInputException.class, () -> OptimizerShards.load(ck, wrong, same));
        assertTrue(e.getMessage().contains("lacks 3 elements of optimizer state momentum (written by a different optimizer?)"),
                e.getMessage());
        e = assertThrows(UserInputException.class, () -> ck.openOptimizerShard(3));
        assertTrue(e.getMessage().contains("no optimizer state for rank 3 (it holds 1 rank(s))"), e.getMessage());
    }

    /**
     * ZeRO resharding: state written by 2 ranks (uneven runs of a sharded tensor, a replicated one in both files)
     * loads into 3 ranks' different runs and into one whole; a missing run is refused.
     */
    @Test
    void optimizerStateReshardsToAnyPartition() {
        ModelConfig cfg = TinyModel.dense();
        ParameterStore store = TinyModel.store(cfg, DataType.DOUBLE, 5);
        Nd4j.getRandom().setSeed(11);
        INDArray momentum = Nd4j.rand(DataType.DOUBLE, 6, 7);
        INDArray columns = Nd4j.rand(DataType.DOUBLE, 7);
        CheckpointWriter w = CheckpointWriter.stage(run.resolve("reshard"), 9);
        w.writeReplicaModel(cfg, store);
        OptimizerShards.write(w, 0, Map.of("m", part(momentum, 0, 15), "c", whole(columns)), store);
        OptimizerShards.write(w, 1, Map.of("m", part(momentum, 15, 42), "c", whole(columns)), store);
        w.writeTrainerState(trainerState(9));
        Checkpoint ck = Checkpoint.open(w.commit());

        long[] cuts = {0, 7, 7, 42};
        for (int rank = 0; rank < 3; rank++) {
            StateSlice m = part(Nd4j.zeros(DataType.DOUBLE, 6, 7), cuts[rank], cuts[rank + 1]);
            StateSlice c = whole(Nd4j.zeros(DataType.DOUBLE, 7));
            OptimizerShards.load(ck, Map.of("m", m, "c", c), store);
            assertTrue(bitEqual(part(momentum, cuts[rank], cuts[rank + 1]).data(), m.data()), "rank " + rank);
            assertTrue(bitEqual(columns, c.data()));
        }
        StateSlice all = whole(Nd4j.zeros(DataType.DOUBLE, 6, 7));
        OptimizerShards.load(ck, Map.of("m", all, "c", whole(Nd4j.zeros(DataType.DOUBLE, 7))), store);
        assertTrue(bitEqual(momentum, all.data()));

        CheckpointWriter gap = CheckpointWriter.stage(run.resolve("gap"), 9);
        gap.writeReplicaModel(cfg, store);
        OptimizerShards.write(gap, 0, Map.of("m", part(momentum, 0, 15)), store);
        gap.writeTrainerState(trainerState(9));
        Checkpoint partial = Checkpoint.open(gap.commit());
        UserInputException e = assertThrows(UserInputException.class,
                () -> OptimizerShards.load(partial, Map.of("m", whole(Nd4j.zeros(DataType.DOUBLE, 6, 7))), store));
        assertTrue(e.getMessage().contains("lacks 27 elements of optimizer state m"), e.getMessage());
    }

    /**
     * Flat optimizer state (AdamW's moments) is only meaningful over the buffer layout it was written with: loaded
     * into the same tensors in another order, each tensor's run follows it by name; a tensor of the same name and
     * another size is another model's, and refused naming it.
     */
    @Test
    void optimizerStateOverAnotherParameterLayoutFollowsItsTensorsByName() {
        ModelConfig cfg = TinyModel.dense();
        ParameterStore store = TinyModel.store(cfg, DataType.DOUBLE, 5);
        Path dir = save(100, cfg, store);
        List<ParameterStore.Tensor> tensors = new ArrayList<>(store.tensors());
        Collections.swap(tensors, 1, 2);
        ParameterStore.Builder reordered = ParameterStore.builder();
        tensors.forEach(t -> reordered.add(t.name(), t.shape()));
        ParameterStore moved = reordered.build(DataType.DOUBLE);
        Map<String, StateSlice> into = new LinkedHashMap<>();
        optimizerState(store, 100).forEach((k, v) -> into.put(k,
                new StateSlice(Nd4j.zeros(v.data().dataType(), v.data().length()), v.fullShape(), 0)));
        Checkpoint ck = Checkpoint.open(dir);
        OptimizerShards.load(ck, into, moved);
        INDArray written = optimizerState(store, 100).get("exp_avg").data();
        INDArray loaded = into.get("exp_avg").data();
        for (ParameterStore.Tensor t : store.tensors()) {
            ParameterStore.Tensor there = moved.tensor(t.name());
            assertTrue(bitEqual(written.get(NDArrayIndex.interval(t.offset(), t.end())),
                    loaded.get(NDArrayIndex.interval(there.offset(), there.end()))), t.name());
        }

        ParameterStore.Builder wider = ParameterStore.builder();
        ParameterStore.Tensor resized = store.tensors().get(1);
        store.tensors().forEach(t -> wider.add(t.name(), t == resized ? new long[] {t.numel() + 1} : t.shape()));
        ParameterStore other = wider.build(DataType.DOUBLE);
        Map<String, StateSlice> flat = Map.of("exp_avg", whole(Nd4j.zeros(DataType.DOUBLE, other.numel())));
        UserInputException e = assertThrows(UserInputException.class, () -> OptimizerShards.load(ck, flat, other));
        assertTrue(e.getMessage().contains("over tensor " + resized.name() + " of " + resized.numel()
                + " elements, where this model's has " + (resized.numel() + 1)), e.getMessage());
    }

    @Test
    void missingPathsAreUserErrors() {
        assertRefused(run.resolve("nope"), "does not exist");
        UserInputException e = assertThrows(UserInputException.class, () -> Checkpoint.open(run));
        assertTrue(e.getMessage().contains("neither a checkpoint"), e.getMessage());
    }

    private static void assertRefused(Path dir, String expected) {
        UserInputException e = assertThrows(UserInputException.class, () -> Checkpoint.open(dir));
        assertTrue(e.getMessage().contains(dir.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
    }
}
