package dev.tessera.worker.checkpoint;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tessera.optimizers.StateSlice;
import dev.tessera.worker.io.AtomicFiles;
import dev.tessera.worker.model.ExpertShard;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.Transformer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Predicate;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Writes a checkpoint ({@code DESIGN.md}, "Checkpoints") so that it either exists completely or not at all.
 *
 * <p>All files go into a hidden staging folder {@code checkpoints/.step-NNNNNNN.tmp-<random>}, each
 * fsynced as it is written (and, when this process commits, hashed from memory on another core while it is
 * written: {@link FileDigests}). {@link #commit()} then puts every file's hash into {@code manifest.json}, written
 * last, and renames the folder into place atomically. A crash at any point leaves either the previous
 * checkpoints untouched plus a hidden leftover that readers ignore, or the complete new one.
 *
 * <p>The steps are separate so that a multi-process job can share the work over a shared file system:
 * the coordinator calls {@link #stage}, each rank {@link #attach}es to the staging folder and writes its
 * model and optimizer shards, and once all ranks report done the coordinator writes the index, config
 * and trainer state and calls {@link #commit()}. {@link #write} does all of it for a single process.
 */
public final class CheckpointWriter {

    /** What a model shard holds, for {@link #writeModelIndex}: its file, tensor names and tensor bytes. */
    public record ModelShard(String file, List<String> tensors, long tensorBytes) {
    }

    private final Path checkpointsDir;
    private final Path staging;
    private final long step;
    private boolean committed;
    private boolean hashAsWritten;

    private CheckpointWriter(Path checkpointsDir, Path staging, long step) {
        this.checkpointsDir = checkpointsDir;
        this.staging = staging;
        this.step = step;
    }

    /**
     * Writes a complete single-process checkpoint (rank 0 holds all optimizer state) and returns its
     * folder {@code <runDir>/checkpoints/step-NNNNNNN}.
     */
    public static Path write(Path runDir, long step, ModelConfig cfg, ParameterStore params,
            Map<String, StateSlice> optimizerState, Map<String, Object> trainerState) {
        CheckpointWriter w = stage(runDir, step);
        w.hashAsWritten = true; // this process commits, so hashing each file as it is written pays off
        try {
            w.writeReplicaModel(cfg, params);
            OptimizerShards.write(w, 0, optimizerState, params);
            w.writeTrainerState(trainerState);
            return w.commit();
        } catch (RuntimeException | Error e) {
            w.abort();
            throw e;
        }
    }

    /**
     * What a rank that owns a whole replica writes: a staging folder with the model, its index and config, and the
     * optimizer state as rank 0's shard. Returns the staging folder; {@link #finish} completes it.
     */
    public static Path stageReplica(Path runDir, long step, ModelConfig cfg, ParameterStore params,
            Map<String, StateSlice> optimizerState) {
        CheckpointWriter w = stage(runDir, step);
        try {
            w.writeReplicaModel(cfg, params);
            OptimizerShards.write(w, 0, optimizerState, params);
            return w.stagingDir();
        } catch (RuntimeException | Error e) {
            w.abort();
            throw e;
        }
    }

    /**
     * Completes a staged checkpoint: the trainer state, then the manifest, written last, and the rename into
     * place. In a cluster the coordinator calls this once the ranks have written their parts.
     */
    public static Path finish(Path stagingDir, long step, Map<String, Object> trainerState) {
        CheckpointWriter w = attach(stagingDir, step);
        try {
            w.writeTrainerState(trainerState);
            return w.commit();
        } catch (RuntimeException | Error e) {
            w.abort();
            throw e;
        }
    }

    /**
     * The whole model as one shard, with its index and config, under the names of its Hugging Face architecture
     * (with the zero tensors that architecture has and our model lacks).
     */
    public void writeReplicaModel(ModelConfig cfg, ParameterStore params) {
        ModelShard shard = writeModelPart(cfg, params, 0, params.numel(), 0, 1);
        writeModelFiles(cfg, params.dataType(), List.of(shard));
    }

    /**
     * Model shard {@code part} of {@code partCount}: the tensors that start in elements {@code [from, to)} of the
     * flat buffer, the last part with the architecture's zero tensors too. ZeRO-3 writes one part per gathered
     * unit, so no rank ever holds the whole model; {@link #writeModelFiles} completes the model.
     */
    public ModelShard writeModelPart(ModelConfig cfg, ParameterStore params, long from, long to, int part,
                                     int partCount) {
        return writeModelPart(cfg, params, from, to, name -> true, part, partCount);
    }

    /**
     * Model shard {@code part} of {@code partCount}: the tensors of {@code params} whose name (Tessera's, before
     * export) {@code include} accepts, in buffer order; the last part with the architecture's zero tensors too.
     * Several ranks write parts of one model this way into one staging folder (expert parallelism: each rank its
     * own experts, {@link #writeExpertPart}); the rank that completes it reads their names back from the files
     * ({@link #writeModelFiles(ModelConfig, DataType, int)}).
     */
    public ModelShard writeModelPart(ModelConfig cfg, ParameterStore params, Predicate<String> include, int part,
                                     int partCount) {
        return writeModelPart(cfg, params, 0, params.numel(), include, part, partCount);
    }

    /**
     * Model shard {@code part} of {@code partCount}: the tensors that start in elements {@code [from, to)} of the
     * flat buffer and whose name {@code include} accepts (both overloads above in one: ZeRO-3 units on an
     * expert-parallel rank); the last part with the architecture's zero tensors too.
     */
    public ModelShard writeModelPart(ModelConfig cfg, ParameterStore params, long from, long to,
                                     Predicate<String> include, int part, int partCount) {
        HfArchitecture arch = HfArchitecture.of(cfg);
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        for (ParameterStore.Tensor t : params.tensors()) {
            if (t.offset() >= from && t.offset() < to && include.test(t.name())) {
                tensors.put(arch.exportedName(t.name()), params.param(t.name()));
            }
        }
        if (part == partCount - 1) {
            arch.zeroFillers(cfg).forEach((name, shape) -> tensors.put(name, Nd4j.zeros(params.dataType(), shape)));
        }
        return writeModelShard(part, partCount, tensors);
    }

    /**
     * Expert-parallel rank {@code epRank}'s part of the model, {@code epRank} of {@code ep}: the experts its store
     * holds, and on rank 0 also every dense tensor (which all ranks hold alike); the last rank's part has the
     * architecture's zero tensors. Rank {@code epRank} of one expert group (the ranks that hold all experts
     * between them) calls it, all into the same staging folder ({@link #attach}); then one of them calls
     * {@link #writeModelFiles(ModelConfig, DataType, int)} with {@code ep} once all parts are written.
     */
    public ModelShard writeExpertPart(ModelConfig cfg, ParameterStore params, int epRank, int ep) {
        if (epRank < 0 || epRank >= ep) {
            throw new IllegalArgumentException("expert-parallel rank " + epRank + " of " + ep);
        }
        return writeModelPart(cfg, params, epRank == 0 ? name -> true : ExpertShard::isExpertTensor, epRank, ep);
    }

    /** The model's config and the index of its {@code shards}, written once they all are. */
    public void writeModelFiles(ModelConfig cfg, DataType paramType, List<ModelShard> shards) {
        writeConfig(cfg, paramType);
        writeModelIndex(shards);
    }

    /**
     * As {@link #writeModelFiles(ModelConfig, DataType, List)}, learning the parts from the files {@code partCount}
     * ranks wrote into the staging folder ({@link #stagedModelParts}), so no rank hands another its list. The parts
     * must hold, between them, exactly {@code cfg}'s tensors (under its architecture's names, the zero tensors
     * included), each once: a part missing or short of tensors (a rank that did not write, or wrote the wrong
     * experts) is refused here, before anything is committed, naming what is missing.
     */
    public void writeModelFiles(ModelConfig cfg, DataType paramType, int partCount) {
        List<ModelShard> shards = stagedModelParts(partCount);
        HfArchitecture arch = HfArchitecture.of(cfg);
        Set<String> expected = new TreeSet<>(arch.zeroFillers(cfg).keySet());
        for (ParameterStore.Tensor t : Transformer.layout(cfg).tensors()) {
            expected.add(arch.exportedName(t.name()));
        }
        Set<String> held = new TreeSet<>();
        for (ModelShard s : shards) {
            for (String name : s.tensors()) {
                if (!expected.contains(name)) {
                    throw new IllegalStateException("model part " + s.file() + " in " + staging + " holds " + name
                            + ", which the model lacks (written for another model config?)");
                }
                if (!held.add(name)) {
                    throw new IllegalStateException("tensor " + name + " is in more than one model part in " + staging);
                }
            }
        }
        expected.removeAll(held);
        if (!expected.isEmpty()) {
            throw new IllegalStateException("the " + partCount + " model parts in " + staging + " lack "
                    + expected.size() + " of the model's tensors, first " + expected.iterator().next()
                    + " (did every rank write its part, with its own experts?)");
        }
        writeModelFiles(cfg, paramType, shards);
    }

    /**
     * The model parts {@code model-0000k-of-<partCount>.safetensors} in the staging folder, as their writers'
     * {@link #writeModelPart} returned them, read back from the files' headers (names in file order, tensor bytes).
     */
    public List<ModelShard> stagedModelParts(int partCount) {
        List<ModelShard> shards = new ArrayList<>();
        for (int part = 0; part < partCount; part++) {
            String file = CheckpointLayout.modelShard(part, partCount);
            Path path = staging.resolve(file);
            if (!Files.isRegularFile(path)) {
                throw new IllegalStateException("checkpoint staging folder " + staging + " lacks model part " + file
                        + " (has every rank written its part?)");
            }
            try (SafeTensorsReader reader = SafeTensors.open(path)) {
                List<String> names = new ArrayList<>();
                long bytes = 0;
                for (SafeTensors.Entry e : reader.entries()) {
                    names.add(e.name());
                    bytes += e.end() - e.begin();
                }
                shards.add(new ModelShard(file, List.copyOf(names), bytes));
            }
        }
        return shards;
    }

    /** Creates a fresh staging folder for {@code step} under {@code <runDir>/checkpoints}. */
    public static CheckpointWriter stage(Path runDir, long step) {
        return stage(runDir, step, AtomicFiles.randomSuffix());
    }

    /** The staging folder {@link #stage(Path, long, String)} makes: hidden, so readers never take it for a checkpoint. */
    public static Path stagingDir(Path runDir, long step, String suffix) {
        return CheckpointLayout.checkpointsDir(runDir).resolve("." + CheckpointLayout.dirName(step) + ".tmp-" + suffix);
    }

    /** As {@link #stage(Path, long)} with a name other processes can be told ({@link #stagingDir}). */
    public static CheckpointWriter stage(Path runDir, long step, String suffix) {
        Path dir = CheckpointLayout.checkpointsDir(runDir);
        Path staging = stagingDir(runDir, step, suffix);
        try {
            Files.createDirectories(dir);
            Files.createDirectory(staging);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create checkpoint staging folder " + staging, e);
        }
        return new CheckpointWriter(dir, staging, step);
    }

    /** Joins a staging folder made by {@link #stage} in another process (same file system). */
    public static CheckpointWriter attach(Path stagingDir, long step) {
        if (!Files.isDirectory(stagingDir)) {
            throw new IllegalArgumentException("no checkpoint staging folder " + stagingDir);
        }
        return new CheckpointWriter(stagingDir.toAbsolutePath().getParent(), stagingDir, step);
    }

    public Path stagingDir() {
        return staging;
    }

    public long step() {
        return step;
    }

    /** {@code config.json}: the Hugging Face model config with the parameters' dtype. */
    public void writeConfig(ModelConfig cfg, DataType paramType) {
        ObjectNode json = HfModelConfig.toJson(cfg, paramType);
        writeJson(CheckpointLayout.CONFIG, json);
    }

    /**
     * Writes model shard {@code shard} of {@code shardCount} ({@code model-0000k-of-0000n.safetensors})
     * with {@code tensors} in order, straight from their buffers.
     */
    public ModelShard writeModelShard(int shard, int shardCount, Map<String, INDArray> tensors) {
        String file = CheckpointLayout.modelShard(shard, shardCount);
        // "format": "pt" is what transformers checks before it trusts a safetensors file.
        Path path = fresh(file);
        SafeTensors.write(path, tensors, Map.of("format", "pt"), (f, contents) -> written(f, contents, tensors));
        long bytes = 0;
        for (INDArray a : tensors.values()) {
            bytes += a.length() * a.dataType().width();
        }
        return new ModelShard(file, List.copyOf(tensors.keySet()), bytes);
    }

    /** {@code model.safetensors.index.json} in Hugging Face's format: total tensor bytes and name -> file. */
    public void writeModelIndex(List<ModelShard> shards) {
        writeJson(CheckpointLayout.MODEL_INDEX, modelIndex(shards));
    }

    /** The JSON of {@code model.safetensors.index.json} over {@code shards}; each tensor must be in one only. */
    static ObjectNode modelIndex(List<ModelShard> shards) {
        Map<String, String> weightMap = new TreeMap<>();
        long total = 0;
        for (ModelShard s : shards) {
            for (String name : s.tensors()) {
                if (weightMap.put(name, s.file()) != null) {
                    throw new IllegalArgumentException("tensor " + name + " is in more than one model shard");
                }
            }
            total += s.tensorBytes();
        }
        ObjectNode root = Json.MAPPER.createObjectNode();
        root.putObject("metadata").put("total_size", total);
        ObjectNode map = root.putObject("weight_map");
        weightMap.forEach(map::put);
        return root;
    }

    /**
     * {@code optimizer/rank-0000r.safetensors}: the optimizer state this rank owns, by name. {@code metadata}
     * (small, JSON-serialisable) is stored with the rank and step as JSON in the header's
     * {@code __metadata__["tessera"]}.
     */
    public void writeOptimizerShard(int rank, Map<String, INDArray> state, Map<String, Object> metadata) {
        writeRankFile(CheckpointLayout.OPTIMIZER_DIR, CheckpointLayout.optimizerShard(rank), rank, state, metadata);
    }

    /** Rank {@code rank}'s gradient-compression state ({@link CheckpointLayout#compressionState}). */
    public void writeCompressionState(int rank, Map<String, INDArray> state, Map<String, Object> metadata) {
        writeRankFile(CheckpointLayout.COMPRESSION_DIR, CheckpointLayout.compressionState(rank), rank, state,
                metadata);
    }

    /** Rank {@code rank}'s CO2 state ({@link CheckpointLayout#co2State}). */
    public void writeCo2State(int rank, Map<String, INDArray> state, Map<String, Object> metadata) {
        writeRankFile(CheckpointLayout.CO2_DIR, CheckpointLayout.co2State(rank), rank, state, metadata);
    }

    private void writeRankFile(String dir, String relative, int rank, Map<String, INDArray> state,
                               Map<String, Object> metadata) {
        Map<String, Object> meta = new LinkedHashMap<>();
        meta.put("rank", rank);
        meta.put("step", step);
        meta.putAll(metadata);
        String json;
        try {
            json = Json.COMPACT.writeValueAsString(meta);
            Files.createDirectories(staging.resolve(dir));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prepare " + relative + " of rank " + rank + " in " + staging, e);
        }
        Path path = fresh(relative);
        SafeTensors.write(path, state, Map.of(Checkpoint.OPTIMIZER_METADATA, json),
                (f, contents) -> written(f, contents, state));
    }

    /** {@code trainer_state.json}: step, data cursor, RNG, mesh, job config: whatever resume needs. */
    public void writeTrainerState(Map<String, Object> trainerState) {
        writeJson(CheckpointLayout.TRAINER_STATE, Json.MAPPER.valueToTree(trainerState));
    }

    /**
     * Writes the manifest last and renames the staging folder to {@code step-NNNNNNN}. An existing
     * checkpoint of the same step is replaced (moved aside first, deleted after).
     */
    public Path commit() {
        if (committed) {
            throw new IllegalStateException("checkpoint of step " + step + " is already committed");
        }
        for (String required : List.of(CheckpointLayout.CONFIG, CheckpointLayout.MODEL_INDEX, CheckpointLayout.TRAINER_STATE)) {
            if (!Files.isRegularFile(staging.resolve(required))) {
                throw new IllegalStateException("checkpoint staging folder " + staging + " lacks " + required);
            }
        }
        Path target = checkpointsDir.resolve(CheckpointLayout.dirName(step));
        try {
            for (String dir : List.of(CheckpointLayout.OPTIMIZER_DIR, CheckpointLayout.COMPRESSION_DIR,
                    CheckpointLayout.CO2_DIR)) {
                Path rankFiles = staging.resolve(dir);
                if (Files.isDirectory(rankFiles)) {
                    AtomicFiles.fsyncDirectory(rankFiles);
                }
            }
            Manifest manifest = Manifest.compute(staging, step);
            AtomicFiles.writeSynced(staging.resolve(CheckpointLayout.MANIFEST), manifest.toJson());
            AtomicFiles.fsyncDirectory(staging);
            Path old = null;
            if (Files.exists(target)) {
                old = checkpointsDir.resolve("." + CheckpointLayout.dirName(step) + ".old-" + AtomicFiles.randomSuffix());
                AtomicFiles.moveAtomically(target, old);
            }
            AtomicFiles.moveAtomically(staging, target);
            committed = true;
            if (old != null) {
                AtomicFiles.deleteRecursively(old);
            }
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot commit checkpoint " + target, e);
        }
    }

    /** Deletes the staging folder (after a failed write); a no-op once committed. */
    public void abort() {
        if (!committed) {
            FileDigests.forget(staging);
            AtomicFiles.deleteRecursively(staging);
        }
    }

    /**
     * A file is about to be written from {@code contents}, the memory of {@code tensors}: hash it alongside if this
     * process will commit (else the committer reads the file). The hash may still run when the next file is written;
     * {@link #commit()} waits for it, and training waits for the commit.
     */
    private void written(Path file, List<ByteBuffer> contents, Map<String, INDArray> tensors) {
        if (hashAsWritten) {
            FileDigests.start(file, contents, tensors);
        }
    }

    private Path fresh(String relative) {
        if (committed) {
            throw new IllegalStateException("checkpoint of step " + step + " is already committed");
        }
        return staging.resolve(relative);
    }

    private void writeJson(String name, Object json) {
        Path file = fresh(name);
        try {
            AtomicFiles.writeSynced(file, Json.MAPPER.writeValueAsBytes(json));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }
}
