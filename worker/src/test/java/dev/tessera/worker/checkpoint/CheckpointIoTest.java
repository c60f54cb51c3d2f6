package dev.tessera.worker.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.comm.UserInputException;
import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.StateSlice;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Checkpoint files are read once to load them, their hashes checked on the way: same bytes, same hashes, corruption refused. */
class CheckpointIoTest {

    @TempDir
    Path dir;

    /** More than one chunk, and not a multiple of it: chunk boundaries fall inside the tensor. */
    private static final long BIG = DirectFile.CHUNK / 4 * 2 + 12345;

    private static String sha256Of(Path file) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    }

    @Test
    void aFileHashedWhileWrittenAndOneHashedWhileReadGetTheSameHashAsTheBytesOnDisk() throws Exception {
        Nd4j.getRandom().setSeed(5);
        ParameterStore store = TinyModel.store(TinyModel.dense(), DataType.FLOAT, 3);
        Path ck = save(store, state(store));
        Manifest m = Manifest.read(ck);
        for (Map.Entry<String, Manifest.FileEntry> e : m.files().entrySet()) {
            assertEquals(sha256Of(ck.resolve(e.getKey())), e.getValue().sha256(), e.getKey());
            assertEquals(sha256Of(ck.resolve(e.getKey())), Manifest.sha256(ck.resolve(e.getKey())), e.getKey());
        }
    }

    @Test
    void aScanReadsPiecesStraddlingChunksBitExactlyAndHashesTheWholeFile() throws Exception {
        Nd4j.getRandom().setSeed(6);
        INDArray big = Nd4j.rand(DataType.FLOAT, BIG);
        INDArray other = Nd4j.rand(DataType.FLOAT, 1000);
        Path file = dir.resolve("t.safetensors");
        SafeTensors.write(file, Map.of("big", big, "other", other), Map.of());
        // Two runs of "big" into one array at other offsets; the bytes between them and "other" are only hashed.
        long cut = DirectFile.CHUNK / 4 - 3;
        INDArray into = Nd4j.zeros(DataType.FLOAT, BIG + 10);
        try (SafeTensorsReader reader = SafeTensors.open(file)) {
            String sha = reader.scan(Map.of("big", List.of(new SafeTensorsReader.Piece(cut, into, 10 + cut, BIG - cut),
                    new SafeTensorsReader.Piece(1, into, 11, cut - 100))), true);
            assertEquals(sha256Of(file), sha);
            assertEquals(null, reader.scan(Map.of(), false), "no hash asked, none computed");
        }
        INDArray expected = Nd4j.zeros(DataType.FLOAT, BIG + 10);
        expected.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(11, 10 + cut - 99))
                .assign(big.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(1, cut - 99)));
        expected.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(10 + cut, 10 + BIG))
                .assign(big.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(cut, BIG)));
        assertArrayEquals(expected.data().asFloat(), into.data().asFloat());
    }

    private Path save(ParameterStore store, Map<String, StateSlice> state) {
        return CheckpointWriter.write(dir, 10, TinyModel.dense(), store, state, Map.of("step", 10));
    }

    private static Map<String, StateSlice> state(ParameterStore store) {
        Nd4j.getRandom().setSeed(9);
        Map<String, StateSlice> s = new LinkedHashMap<>();
        s.put("exp_avg", new StateSlice(Nd4j.rand(store.dataType(), store.numel()), new long[] {store.numel()}, 0));
        s.put("exp_avg_sq", new StateSlice(Nd4j.rand(store.dataType(), store.numel()), new long[] {store.numel()}, 0));
        return s;
    }

    @Test
    void loadingWhileHashingRestoresEveryByteAndVerifiesEveryFile() {
        ModelConfig cfg = TinyModel.dense();
        ParameterStore store = TinyModel.store(cfg, DataType.FLOAT, 3);
        Map<String, StateSlice> state = state(store);
        Path ck = save(store, state);
        ParameterStore back = TinyModel.store(cfg, DataType.FLOAT, 99);
        Map<String, StateSlice> backState = state(back);
        backState.values().forEach(s -> s.data().assign(0));
        Checkpoint c = Checkpoint.openToLoad(ck);
        c.loadParameters(back);
        OptimizerShards.load(c, backState, back);
        c.verifyRest();
        assertArrayEquals(store.params().data().asFloat(), back.params().data().asFloat());
        for (String name : state.keySet()) {
            assertArrayEquals(state.get(name).data().data().asFloat(), backState.get(name).data().data().asFloat());
        }
    }

    private static void flipByte(Path file, long position) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.seek(position);
            int b = f.read();
            f.seek(position);
            f.write(b ^ 0x01);
        }
    }

    @Test
    void aCorruptedByteIsRefusedWhileLoadingWhereverItIs() throws IOException {
        ModelConfig cfg = TinyModel.dense();
        ParameterStore store = TinyModel.store(cfg, DataType.FLOAT, 3);
        Path ck = save(store, state(store));
        Path model = ck.resolve(CheckpointLayout.modelShard(0, 1));
        Path optimizer = ck.resolve(CheckpointLayout.optimizerShard(0));

        flipByte(model, Files.size(model) - 5); // inside the last tensor's data
        ParameterStore back = TinyModel.store(cfg, DataType.FLOAT, 99);
        UserInputException e = assertThrows(UserInputException.class, () -> Checkpoint.openToLoad(ck).loadParameters(back));
        assertTrue(e.getMessage().contains("SHA-256 mismatch"), e.getMessage());
        flipByte(model, Files.size(model) - 5);

        flipByte(optimizer, Files.size(optimizer) - 5);
        Checkpoint c = Checkpoint.openToLoad(ck);
        c.loadParameters(back);
        Map<String, StateSlice> backState = state(back);
        e = assertThrows(UserInputException.class, () -> OptimizerShards.load(c, backState, back));
        assertTrue(e.getMessage().contains("SHA-256 mismatch"), e.getMessage());
        // Not loaded at all: verifyRest reads it and refuses it too, as does a full open.
        Checkpoint c2 = Checkpoint.openToLoad(ck);
        e = assertThrows(UserInputException.class, c2::verifyRest);
        assertTrue(e.getMessage().contains("SHA-256 mismatch"), e.getMessage());
        assertThrows(UserInputException.class, () -> Checkpoint.open(ck));
    }

    @Test
    void aSmallFileIsCheckedWhenOpenedToLoad() throws IOException {
        ParameterStore store = TinyModel.store(TinyModel.dense(), DataType.FLOAT, 3);
        Path ck = save(store, state(store));
        Path trainer = ck.resolve(CheckpointLayout.TRAINER_STATE);
        byte[] bytes = Files.readAllBytes(trainer);
        bytes[bytes.length - 2] = (byte) (bytes[bytes.length - 2] == '0' ? '1' : '0');
        Files.write(trainer, bytes);
        UserInputException e = assertThrows(UserInputException.class, () -> Checkpoint.openToLoad(ck));
        assertTrue(e.getMessage().contains("SHA-256 mismatch"), e.getMessage());
    }

    @Test
    void aShardLoadedWhileHashingWritesOnlyItsElementsAndStillChecksTheWholeFile() throws IOException {
        ModelConfig cfg = TinyModel.dense();
        ParameterStore store = TinyModel.store(cfg, DataType.FLOAT, 3);
        Path ck = save(store, state(store));
        ParameterStore back = TinyModel.store(cfg, DataType.FLOAT, 99);
        float[] before = back.params().data().asFloat();
        long n = store.numel();
        Shard kept = new Shard(n / 3, 2 * n / 3);
        Checkpoint.openToLoad(ck).loadParameters(back, kept);
        float[] written = store.params().data().asFloat();
        float[] loaded = back.params().data().asFloat();
        for (int i = 0; i < n; i++) {
            assertEquals(i >= kept.from() && i < kept.to() ? written[i] : before[i], loaded[i], "element " + i);
        }
        Path model = ck.resolve(CheckpointLayout.modelShard(0, 1));
        flipByte(model, Files.size(model) - 1); // in the last tensor, which this shard does not load
        UserInputException e = assertThrows(UserInputException.class,
                () -> Checkpoint.openToLoad(ck).loadParameters(TinyModel.store(cfg, DataType.FLOAT, 1), kept));
        assertTrue(e.getMessage().contains("SHA-256 mismatch"), e.getMessage());
    }
}
