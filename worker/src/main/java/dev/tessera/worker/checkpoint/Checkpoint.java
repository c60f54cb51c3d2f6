package dev.tessera.worker.checkpoint;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.comm.UserInputException;
import dev.tessera.optimizers.Shard;
import dev.tessera.worker.model.ExpertShard;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.Transformer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.OptionalLong;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.function.IntFunction;
import java.util.stream.Stream;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A verified checkpoint. {@link #open} accepts it only when {@code manifest.json} is present and every
 * file it lists exists with the listed size and SHA-256; anything else is refused with a one-line
 * {@link UserInputException} naming the folder and the problem. Tensors are loaded by name into caller
 * arrays, so a checkpoint loads into any layout that has the same tensors, or, on an expert-parallel rank, the same
 * tensors less the other ranks' experts.
 */
public final class Checkpoint {

    /** Key of the optimizer shards' JSON metadata inside the safetensors {@code __metadata__}. */
    static final String OPTIMIZER_METADATA = "tessera";

    private final Path dir;
    private final Manifest manifest;
    private final ModelConfig modelConfig;
    private final DataType dataType;
    private final Map<String, Object> trainerState;
    private final Map<String, String> weightMap;
    private final HfArchitecture architecture;
    /** Listed files whose SHA-256 is not checked yet ({@link #openToLoad}): each is checked as it is loaded. */
    private final Set<String> unverified;

    private Checkpoint(Path dir, Manifest manifest, Set<String> unverified) {
        this.dir = dir;
        this.manifest = manifest;
        this.unverified = unverified;
        for (String required : List.of(CheckpointLayout.CONFIG, CheckpointLayout.MODEL_INDEX, CheckpointLayout.TRAINER_STATE)) {
            if (!manifest.files().containsKey(required)) {
                throw Manifest.problem(dir, "is incomplete: its manifest does not list " + required);
            }
        }
        JsonNode config = readJson(CheckpointLayout.CONFIG);
        String configName = dir.resolve(CheckpointLayout.CONFIG).toString();
        this.modelConfig = HfModelConfig.fromJson(config, configName);
        this.dataType = HfModelConfig.dataType(config, configName);
        this.architecture = HfArchitecture.declaredBy(config);
        this.trainerState = Collections.unmodifiableMap(
                Json.MAPPER.convertValue(readJson(CheckpointLayout.TRAINER_STATE), new TypeReference<LinkedHashMap<String, Object>>() { }));
        this.weightMap = Collections.unmodifiableMap(readWeightMap());
    }

    /** As {@link #open(Path, Consumer)}, reporting skipped checkpoints on stderr. */
    public static Checkpoint open(Path path) {
        return open(path, System.err::println);
    }

    /**
     * Opens a checkpoint folder ({@code .../checkpoints/step-NNNNNNN}), or, given a run folder, the newest
     * complete checkpoint in its {@code checkpoints/}; each newer one skipped as incomplete or corrupt is reported
     * to {@code skipped} as one line naming it and why.
     */
    public static Checkpoint open(Path path, Consumer<String> skipped) {
        if (!Files.isDirectory(path)) {
            throw new UserInputException("checkpoint " + path + " does not exist (give a step-NNNNNNN folder or a run folder)");
        }
        if (Files.exists(path.resolve(CheckpointLayout.MANIFEST))
                || CheckpointLayout.parseStep(path.getFileName().toString()).isPresent()) {
            return openVerified(path);
        }
        Path checkpoints = CheckpointLayout.checkpointsDir(path);
        if (!Files.isDirectory(checkpoints)) {
            throw new UserInputException(path + " is neither a checkpoint (step-NNNNNNN with " + CheckpointLayout.MANIFEST
                    + ") nor a run folder with a " + CheckpointLayout.CHECKPOINTS + "/ folder");
        }
        return newestComplete(path, skipped).orElseThrow(() -> new UserInputException("run folder " + path
                + " has no complete checkpoint in " + checkpoints + " (all missing, interrupted or corrupt)"));
    }

    /** As {@link #latest(Path, Consumer)}, reporting skipped checkpoints on stderr. */
    public static Optional<Path> latest(Path runDir) {
        return latest(runDir, System.err::println);
    }

    /**
     * The newest complete checkpoint of a run. Incomplete or corrupt ones (an interrupted write, a damaged
     * disk) are skipped, each reported to {@code skipped} as one line naming it and why, so a restart resumes
     * from the last good state and the user learns that it is not the newest. Hidden staging folders are not
     * checkpoints and are passed over silently.
     */
    public static Optional<Path> latest(Path runDir, Consumer<String> skipped) {
        return newestComplete(runDir, skipped).map(Checkpoint::dir);
    }

    private static Optional<Checkpoint> newestComplete(Path runDir, Consumer<String> skipped) {
        for (Path candidate : candidatesNewestFirst(runDir)) {
            try {
                return Optional.of(openVerified(candidate));
            } catch (UserInputException notComplete) {
                skipped.accept("warning: " + notComplete.getMessage() + "; skipping it for the next older one");
            }
        }
        return Optional.empty();
    }

    private static List<Path> candidatesNewestFirst(Path runDir) {
        Path checkpoints = CheckpointLayout.checkpointsDir(runDir);
        if (!Files.isDirectory(checkpoints)) {
            return List.of();
        }
        Map<Long, Path> byStep = new TreeMap<>(Comparator.reverseOrder());
        try (Stream<Path> list = Files.list(checkpoints)) {
            list.filter(Files::isDirectory).forEach(p -> {
                OptionalLong step = CheckpointLayout.parseStep(p.getFileName().toString());
                if (step.isPresent()) {
                    byStep.put(step.getAsLong(), p);
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + checkpoints, e);
        }
        return new ArrayList<>(byStep.values());
    }

    private static Checkpoint openVerified(Path dir) {
        Manifest manifest = Manifest.read(dir);
        manifest.verify(dir);
        return new Checkpoint(dir, manifest, new HashSet<>());
    }

    /**
     * Opens checkpoint folder {@code dir} to load it, reading its tensor files once: the manifest, every file's
     * presence and size, and the hashes of the small files are checked now; each {@code .safetensors} file's SHA-256
     * is computed while {@link #loadParameters} or {@link OptimizerShards#load} read it into place, and a mismatch is
     * refused as {@link #open} refuses it, once that file has been read (the buffers then hold what was read: the
     * caller gives up, or loads another checkpoint over all of it). {@link #verifyRest} checks the files no load
     * read. Resume uses this after {@link #open} or {@link #latest} chose the checkpoint.
     */
    public static Checkpoint openToLoad(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new UserInputException("checkpoint " + dir + " does not exist (give a step-NNNNNNN folder)");
        }
        Manifest manifest = Manifest.read(dir);
        manifest.verifySizes(dir);
        Set<String> unverified = new HashSet<>();
        for (String name : manifest.files().keySet()) {
            if (name.endsWith(".safetensors")) {
                unverified.add(name);
            } else {
                manifest.verifyHash(dir, name);
            }
        }
        return new Checkpoint(dir, manifest, unverified);
    }

    /** Checks the SHA-256 of every file no load has read yet: afterwards the whole checkpoint is checked. */
    public void verifyRest() {
        for (String name : List.copyOf(unverified)) {
            manifest.verifyHash(dir, name);
            unverified.remove(name);
        }
    }

    /** Reads all of {@code file} once into {@code pieces}, checking its SHA-256 on the way if it is still unchecked. */
    void scan(SafeTensorsReader reader, String file, Map<String, List<SafeTensorsReader.Piece>> pieces) {
        boolean check = unverified.contains(file);
        String sha256 = reader.scan(pieces, check);
        if (check) {
            manifest.checkHash(dir, file, sha256);
            unverified.remove(file);
        }
    }

    public Path dir() {
        return dir;
    }

    public long step() {
        return manifest.step();
    }

    public ModelConfig modelConfig() {
        return modelConfig;
    }

    /** The dtype the parameters were saved in ({@code torch_dtype}). */
    public DataType dataType() {
        return dataType;
    }

    /**
     * {@code trainer_state.json} as written. JSON numbers come back as the narrowest fitting type
     * (Integer, Long, Double), so read them as {@link Number}.
     */
    public Map<String, Object> trainerState() {
        return trainerState;
    }

    /** The Hugging Face architecture {@code config.json} declares. */
    HfArchitecture architecture() {
        return architecture;
    }

    /** Tensor name -> model shard file, from {@code model.safetensors.index.json}. */
    public Map<String, String> weightMap() {
        return weightMap;
    }

    /**
     * Loads every parameter of {@code store} by its Hugging Face name in the checkpoint's architecture
     * ({@code config.json}'s {@code model_type}), straight into the store's buffer (float32 and float64 convert
     * into each other). The checkpoint must hold exactly the store's tensors with the same shapes, plus the
     * architecture's tensors our model lacks, which must be zeros (else the model would not be ours), plus, for an
     * expert-parallel rank whose store holds only its own experts, the other experts of the checkpoint's model
     * (not read; a file only they fill is hashed by {@link #verifyRest}). Every
     * weight must be finite: a NaN or infinite one is refused here, naming the tensor, rather than surfacing steps
     * later as a diverged loss that looks like a learning-rate problem.
     */
    public void loadParameters(ParameterStore store) {
        loadParameters(store, Shard.whole(store.numel()));
    }

    /**
     * As {@link #loadParameters(ParameterStore)}, writing only elements {@code [kept.from(), kept.to())} of the
     * store's flat buffer (ZeRO-3: the rank's shard, so loading never makes a whole replica resident); only those
     * are written and checked to be finite, each rank checking its own. Each model file is read front to back once,
     * whole while its hash is still to be checked ({@link #openToLoad}).
     */
    public void loadParameters(ParameterStore store, Shard kept) {
        loadParameters(store, List.of(kept));
    }

    /**
     * As {@link #loadParameters(ParameterStore, Shard)} with several disjoint ranges kept, no tensor in more than one
     * (ZeRO-3 with expert parallelism: the rank's shard of the dense tensors and its shard of its experts).
     */
    public void loadParameters(ParameterStore store, List<Shard> kept) {
        Map<String, Map<String, String>> byFile = new LinkedHashMap<>(); // file -> stored name -> store's name
        Map<String, long[]> fillers = architecture.zeroFillers(modelConfig);
        Set<String> expected = new HashSet<>(fillers.keySet());
        for (ParameterStore.Tensor t : store.tensors()) {
            String stored = architecture.exportedName(t.name());
            String file = weightMap.get(stored);
            if (file == null) {
                throw new UserInputException("checkpoint " + dir + " has no tensor " + stored
                        + " (was it written for a different model config? compare its config.json)");
            }
            byFile.computeIfAbsent(file, f -> new LinkedHashMap<>()).put(stored, t.name());
            expected.add(stored);
        }
        Set<String> othersExperts = null; // made only when the store lacks some of the checkpoint's tensors
        for (String name : weightMap.keySet()) {
            if (expected.contains(name)) {
                continue;
            }
            if (othersExperts == null) {
                othersExperts = expertTensors();
            }
            if (!othersExperts.contains(name)) {
                throw new UserInputException("checkpoint " + dir + " has tensor " + name
                        + " that the model lacks (was it written for a different model config? compare its config.json)");
            }
            // Another expert-parallel rank's expert: not read here; verifyRest hashes a file only such experts fill.
        }
        for (Map.Entry<String, Map<String, String>> e : byFile.entrySet()) {
            try (SafeTensorsReader reader = SafeTensors.open(dir.resolve(e.getKey()))) {
                // One pass over the file, straight into the store's buffer; another dtype goes through a copy.
                Map<String, List<SafeTensorsReader.Piece>> pieces = new LinkedHashMap<>();
                List<Runnable> afterRead = new ArrayList<>();
                e.getValue().forEach((stored, name) -> {
                    ParameterStore.Tensor t = store.tensor(name);
                    SafeTensors.Entry entry = reader.requireShape(stored, t.shape());
                    long from = 0;
                    long to = 0;
                    for (Shard range : kept) {
                        if (Math.min(range.to(), t.end()) > Math.max(range.from(), t.offset())) {
                            from = Math.max(range.from(), t.offset());
                            to = Math.min(range.to(), t.end());
                        }
                    }
                    if (to <= from) {
                        return; // another rank's: its shape checked, its bytes only hashed
                    }
                    long start = from;
                    long length = to - from;
                    INDArray part = Nd4j.create(store.params().data(), new long[] {length}, new long[] {1},
                            store.params().offset() + start, 'c', store.dataType());
                    INDArray into = part;
                    if (!reader.loadsDirectly(entry, store.dataType())) {
                        INDArray staged = Nd4j.createUninitialized(entry.dtype().nd4j(), length);
                        into = staged;
                        afterRead.add(() -> part.assign(staged));
                    }
                    pieces.put(stored, List.of(new SafeTensorsReader.Piece(start - t.offset(), into, 0, length)));
                    afterRead.add(() -> requireFinite(stored, part, start - t.offset()));
                });
                scan(reader, e.getKey(), pieces);
                afterRead.forEach(Runnable::run);
            }
        }
        fillers.forEach(this::requireZeros);
    }

    /**
     * The stored names of the MoE expert tensors of the checkpoint's own model ({@link #modelConfig()}, laid out as
     * {@link Transformer#layout} lays it out): an expert-parallel rank's store holds only its own experts.
     */
    private Set<String> expertTensors() {
        Set<String> experts = new HashSet<>();
        for (ParameterStore.Tensor t : Transformer.layout(modelConfig).tensors()) {
            if (ExpertShard.isExpertTensor(t.name())) {
                experts.add(architecture.exportedName(t.name()));
            }
        }
        return experts;
    }

    /** A tensor of the architecture that our model lacks: present, of its shape, and all zeros. */
    private void requireZeros(String name, long[] shape) {
        String file = weightMap.get(name);
        if (file == null) {
            throw new UserInputException("checkpoint " + dir + " has no tensor " + name + ", which its "
                    + architecture.className + " config.json requires");
        }
        INDArray values = Nd4j.zeros(DataType.DOUBLE, shape);
        try (SafeTensorsReader reader = SafeTensors.open(dir.resolve(file))) {
            reader.read(name, values);
        }
        for (double v : values.data().asDouble()) {
            if (v != 0) {
                throw new UserInputException("checkpoint " + dir + " has nonzero " + name + ", which Tessera's"
                        + " model does not have (it loads only " + architecture.className + " checkpoints whose"
                        + " extra tensors are zeros)");
            }
        }
    }

    /** A sum is finite exactly when no element is NaN or infinite (or the sum overflows: then look closer). */
    private void requireFinite(String name, INDArray weights, long firstElement) {
        if (weights.length() == 0 || Double.isFinite(weights.sumNumber().doubleValue())) {
            return;
        }
        for (long i = 0; i < weights.length(); i++) {
            double w = weights.getDouble(i);
            if (!Double.isFinite(w)) {
                throw new UserInputException("checkpoint " + dir + " holds a non-finite weight (" + w + " at element "
                        + (firstElement + i) + " of tensor " + name + "); it was saved after training diverged and cannot be resumed: "
                        + "resume from an older checkpoint");
            }
        }
    }

    /** How many optimizer shards (ranks) the checkpoint holds. */
    public int optimizerRanks() {
        int n = 0;
        while (manifest.files().containsKey(CheckpointLayout.optimizerShard(n))) {
            n++;
        }
        return n;
    }

    /** The raw optimizer shard of {@code rank}, for resharding; the caller closes it. */
    public SafeTensorsReader openOptimizerShard(int rank) {
        String file = CheckpointLayout.optimizerShard(rank);
        if (!manifest.files().containsKey(file)) {
            throw new UserInputException("checkpoint " + dir + " has no optimizer state for rank " + rank
                    + " (it holds " + optimizerRanks() + " rank(s))");
        }
        return SafeTensors.open(dir.resolve(file));
    }

    /** How many ranks wrote gradient-compression state (0: the run did not compress). */
    public int compressionRanks() {
        return rankFiles(CheckpointLayout::compressionState);
    }

    /** Rank {@code rank}'s gradient-compression state; the caller closes it. */
    public SafeTensorsReader openCompressionState(int rank) {
        return openRankFile(CheckpointLayout.compressionState(rank), "gradient-compression state", rank);
    }

    /** How many ranks wrote CO2 state (0: the run was not a CO2 run). */
    public int co2Ranks() {
        return rankFiles(CheckpointLayout::co2State);
    }

    /** Rank {@code rank}'s CO2 state ({@link CheckpointLayout#co2State}); the caller closes it. */
    public SafeTensorsReader openCo2State(int rank) {
        return openRankFile(CheckpointLayout.co2State(rank), "CO2 state", rank);
    }

    /** The JSON metadata stored with a rank file ({@link #openCompressionState}, {@link #openCo2State}). */
    public Map<String, Object> rankFileMetadata(SafeTensorsReader reader, int rank) {
        return optimizerMetadata(reader, rank);
    }

    private int rankFiles(IntFunction<String> file) {
        int n = 0;
        while (manifest.files().containsKey(file.apply(n))) {
            n++;
        }
        return n;
    }

    private SafeTensorsReader openRankFile(String file, String what, int rank) {
        if (!manifest.files().containsKey(file)) {
            throw new UserInputException("checkpoint " + dir + " has no " + what + " for rank " + rank);
        }
        return SafeTensors.open(dir.resolve(file));
    }

    /** The JSON metadata stored with {@code rank}'s optimizer shard (always has "rank" and "step"). */
    public Map<String, Object> optimizerMetadata(int rank) {
        try (SafeTensorsReader reader = openOptimizerShard(rank)) {
            return optimizerMetadata(reader, rank);
        }
    }

    /** As {@link #optimizerMetadata(int)}, from {@code rank}'s shard already open in {@code reader}. */
    Map<String, Object> optimizerMetadata(SafeTensorsReader reader, int rank) {
        String json = reader.metadata().get(OPTIMIZER_METADATA);
        if (json == null) {
            return Map.of();
        }
        try {
            return Json.MAPPER.readValue(json, new TypeReference<LinkedHashMap<String, Object>>() { });
        } catch (IOException e) {
            throw Manifest.problem(dir, "is corrupt: optimizer metadata of rank " + rank + " is not valid JSON");
        }
    }

    private JsonNode readJson(String name) {
        try {
            JsonNode node = Json.MAPPER.readTree(Files.readAllBytes(dir.resolve(name)));
            if (node == null || !node.isObject()) {
                throw Manifest.problem(dir, "is corrupt: " + name + " is not a JSON object");
            }
            return node;
        } catch (IOException e) {
            throw Manifest.problem(dir, "is corrupt: " + name + " is not valid JSON");
        }
    }

    private Map<String, String> readWeightMap() {
        JsonNode map = readJson(CheckpointLayout.MODEL_INDEX).path("weight_map");
        if (!map.isObject()) {
            throw Manifest.problem(dir, "is corrupt: " + CheckpointLayout.MODEL_INDEX + " has no weight_map");
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String file = e.getValue().asText();
            if (!manifest.files().containsKey(file)) {
                throw Manifest.problem(dir, "is incomplete: " + CheckpointLayout.MODEL_INDEX + " maps " + e.getKey()
                        + " to " + file + ", which the manifest does not list");
            }
            out.put(e.getKey(), file);
        }
        return out;
    }
}
