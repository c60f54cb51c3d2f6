package dev.tessera.worker.checkpoint;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tessera.comm.UserInputException;
import dev.tessera.worker.io.AtomicFiles;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.Transformer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Writes a checkpoint as a Hugging Face model folder: {@code config.json}, the weights re-cut into
 * {@code model-0000k-of-0000n.safetensors} of at most a given size with {@code model.safetensors.index.json}, and
 * the byte tokenizer's files ({@link HfTokenizerFiles}).
 *
 * <p>A checkpoint's model files already hold whole tensors under their Hugging Face names, however the run was
 * sharded (ZeRO-3 writes one file per gathered unit, expert parallelism one per expert-parallel rank), so the
 * export copies each tensor's bytes as they are, one output shard at a time: read into native memory and written
 * from it, never touched element by element. The folder is built in a hidden sibling, every file fsynced, and
 * renamed into place, so {@code out} is either absent (or the empty folder it was) or complete.
 *
 * <p>Routers other than Mixtral's dropless top-k have no Hugging Face equivalent. Their tensors are exported as
 * they are, with one warning that says what transformers will do with them.
 */
public final class HfExport {

    /** Hugging Face's default {@code max_shard_size}, "5GB" (decimal). */
    public static final long DEFAULT_MAX_SHARD_BYTES = 5_000_000_000L;

    /** What was written: the folder, the checkpoint's step, the model files and their tensors' bytes. */
    public record Result(Path dir, long step, List<String> shardFiles, int tensors, long tensorBytes) {
    }

    private HfExport() {
    }

    /**
     * Exports {@code checkpoint} into {@code out}, which must not exist or be an empty folder. A shard holds at most
     * {@code maxShardBytes} of tensor data (Hugging Face's measure), except a shard of one tensor larger than that.
     * Warnings (one line each) go to {@code warnings}.
     */
    public static Result write(Checkpoint checkpoint, Path out, long maxShardBytes, Consumer<String> warnings) {
        if (maxShardBytes <= 0) {
            throw new IllegalArgumentException("max shard size must be positive, got " + maxShardBytes);
        }
        requireFreshTarget(out);
        ModelConfig cfg = checkpoint.modelConfig();
        routerWarning(cfg, checkpoint.architecture()).ifPresent(warnings);
        Path parent = out.toAbsolutePath().getParent();
        Path staging = parent.resolve("." + out.getFileName() + ".tmp-" + AtomicFiles.randomSuffix());
        Map<String, SafeTensorsReader> readers = new LinkedHashMap<>();
        try {
            Files.createDirectories(parent);
            Files.createDirectory(staging);
            for (String file : new TreeSet<>(checkpoint.weightMap().values())) {
                readers.put(file, SafeTensors.open(checkpoint.dir().resolve(file)));
            }
            List<SafeTensors.Entry> tensors = tensorsInModelOrder(checkpoint, readers);
            List<List<SafeTensors.Entry>> plan = cut(tensors, maxShardBytes);
            List<CheckpointWriter.ModelShard> shards = new ArrayList<>();
            for (int s = 0; s < plan.size(); s++) {
                shards.add(writeShard(staging, s, plan.size(), plan.get(s), checkpoint, readers));
            }
            writeJson(staging, CheckpointLayout.MODEL_INDEX, CheckpointWriter.modelIndex(shards));
            writeJson(staging, CheckpointLayout.CONFIG, config(cfg, checkpoint));
            for (Map.Entry<String, ObjectNode> f : HfTokenizerFiles.files(cfg.maxSeqLen()).entrySet()) {
                writeJson(staging, f.getKey(), f.getValue());
            }
            AtomicFiles.fsyncDirectory(staging);
            AtomicFiles.moveAtomically(staging, out); // rename(2) replaces an empty folder
            long bytes = shards.stream().mapToLong(CheckpointWriter.ModelShard::tensorBytes).sum();
            return new Result(out, checkpoint.step(), shards.stream().map(CheckpointWriter.ModelShard::file).toList(),
                    tensors.size(), bytes);
        } catch (IOException e) {
            AtomicFiles.deleteRecursively(staging);
            throw new UncheckedIOException("cannot export " + checkpoint.dir() + " to " + out + ": " + e.getMessage(), e);
        } catch (RuntimeException | Error e) {
            AtomicFiles.deleteRecursively(staging);
            throw e;
        } finally {
            readers.values().forEach(SafeTensorsReader::close);
        }
    }

    /** Refuses an {@code out} that is a file or a folder with something in it: an export never overwrites. */
    private static void requireFreshTarget(Path out) {
        if (!Files.exists(out)) {
            return;
        }
        if (!Files.isDirectory(out)) {
            throw new UserInputException("--out " + out + " is a file; give a new or empty folder");
        }
        try (Stream<Path> entries = Files.list(out)) {
            if (entries.findAny().isPresent()) {
                throw new UserInputException("--out " + out + " is not empty; give a new or empty folder");
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + out, e);
        }
    }

    /** One line on what transformers makes of a router that is not Mixtral's dropless top-k; empty for top-k. */
    static Optional<String> routerWarning(ModelConfig cfg, HfArchitecture arch) {
        if (cfg.nExperts() == 0 || cfg.routing().gate().equals("topk")) {
            return Optional.empty();
        }
        if (cfg.routing().hyper()) {
            return Optional.of("warning: model.gate=hyper has no Hugging Face equivalent: its router is"
                    + " generated from block_sparse_moe.hyper.embedding by a hypernetwork drawn from the seed, not"
                    + " stored as gate.weight, so " + arch.className + " cannot load this export; its tensors are"
                    + " written as they are, and config.json names the gate (tessera_gate)");
        }
        return Optional.of("warning: model.gate=" + cfg.routing().gate() + " routes unlike "
                + arch.className + "'s dropless top-" + cfg.topK() + ": transformers loads the weights but routes"
                + " every token to its top " + cfg.topK() + " experts without capacity limits, so its outputs differ"
                + " from Tessera's; config.json names the gate (tessera_gate)");
    }

    /**
     * The checkpoint's tensors in the model's buffer order (embedding, block by block, head), then the tensors its
     * architecture adds; the index must list exactly these, each once, or the checkpoint is not of its config.
     */
    private static List<SafeTensors.Entry> tensorsInModelOrder(Checkpoint checkpoint,
                                                               Map<String, SafeTensorsReader> readers) {
        ModelConfig cfg = checkpoint.modelConfig();
        HfArchitecture arch = checkpoint.architecture();
        Set<String> names = new LinkedHashSet<>();
        for (ParameterStore.Tensor t : Transformer.layout(cfg).tensors()) {
            names.add(arch.exportedName(t.name()));
        }
        names.addAll(arch.zeroFillers(cfg).keySet());
        Map<String, String> weightMap = checkpoint.weightMap();
        for (String stored : weightMap.keySet()) {
            if (!names.contains(stored)) {
                throw new UserInputException("checkpoint " + checkpoint.dir() + " has tensor " + stored + ", which the"
                        + " model of its " + CheckpointLayout.CONFIG + " lacks");
            }
        }
        List<SafeTensors.Entry> entries = new ArrayList<>();
        for (String name : names) {
            String file = weightMap.get(name);
            if (file == null) {
                throw new UserInputException("checkpoint " + checkpoint.dir() + "'s " + CheckpointLayout.MODEL_INDEX
                        + " lacks tensor " + name + ", which the model of its " + CheckpointLayout.CONFIG + " has");
            }
            entries.add(readers.get(file).entry(name));
        }
        return entries;
    }

    /**
     * Hugging Face's cut: tensors in order, a new shard whenever the next tensor would take the current one past
     * {@code max}; a tensor larger than {@code max} gets a shard of its own.
     */
    static List<List<SafeTensors.Entry>> cut(List<SafeTensors.Entry> tensors, long max) {
        List<List<SafeTensors.Entry>> shards = new ArrayList<>();
        List<SafeTensors.Entry> current = new ArrayList<>();
        long size = 0;
        for (SafeTensors.Entry e : tensors) {
            long bytes = e.end() - e.begin();
            if (!current.isEmpty() && size + bytes > max) {
                shards.add(current);
                current = new ArrayList<>();
                size = 0;
            }
            current.add(e);
            size += bytes;
        }
        if (!current.isEmpty()) {
            shards.add(current);
        }
        return shards;
    }

    private static CheckpointWriter.ModelShard writeShard(Path staging, int shard, int shardCount,
                                                          List<SafeTensors.Entry> entries, Checkpoint checkpoint,
                                                          Map<String, SafeTensorsReader> readers) {
        String file = CheckpointLayout.modelShard(shard, shardCount);
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        try {
            long bytes = 0;
            for (SafeTensors.Entry e : entries) {
                tensors.put(e.name(), readers.get(checkpoint.weightMap().get(e.name())).read(e.name()));
                bytes += e.end() - e.begin();
            }
            // "format": "pt" is what transformers checks before it trusts a safetensors file.
            SafeTensors.write(staging.resolve(file), tensors, Map.of("format", "pt"));
            return new CheckpointWriter.ModelShard(file, List.copyOf(tensors.keySet()), bytes);
        } finally {
            for (INDArray t : tensors.values()) {
                if (t.closeable()) {
                    t.close(); // a shard's memory is freed before the next one is read, not when GC gets to it
                }
            }
        }
    }

    /**
     * The checkpoint's model config in Hugging Face terms, with no special token ids: the byte tokenizer has none,
     * and the Llama and Mixtral defaults (BOS 1, EOS 2) would be the bytes 0x01 and 0x02.
     */
    private static ObjectNode config(ModelConfig cfg, Checkpoint checkpoint) {
        ObjectNode json = HfModelConfig.toJson(cfg, checkpoint.dataType());
        json.putNull("bos_token_id");
        json.putNull("eos_token_id");
        json.putNull("pad_token_id");
        return json;
    }

    private static void writeJson(Path dir, String name, ObjectNode json) throws IOException {
        AtomicFiles.writeSynced(dir.resolve(name), Json.MAPPER.writeValueAsBytes(json));
    }
}
