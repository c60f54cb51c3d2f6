package dev.tessera.worker.checkpoint;

import dev.tessera.comm.UserInputException;
import dev.tessera.optimizers.StateSlice;
import dev.tessera.worker.model.ParameterStore;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Optimizer state in checkpoints, one file per rank ({@code optimizer/rank-0000r.safetensors}), with its layout:
 * each state tensor is stored as the 1-D run of its flattened elements that the rank held, and the metadata
 * records the full shape and where the run starts. Loading assembles whatever runs a new partitioning needs from
 * every old rank's file, so a checkpoint written by W ranks at any ZeRO stage resumes on any other world size
 * and stage (resharding); replicated statistics are simply found in every file.
 *
 * <p>State such as AdamW's moments is one run over the flat parameter buffer, so its elements mean something
 * only with the buffer's layout; every file also records that layout (each tensor's name, offset and size) and
 * a resume into a model laid out differently is refused instead of pairing moments with the wrong weights.
 */
public final class OptimizerShards {

    static final String SLICES = "slices";
    static final String PARAMETERS = "parameters";

    private OptimizerShards() {
    }

    /** Writes {@code rank}'s optimizer state, kept over {@code params}' buffers, to {@code writer}'s staging folder. */
    public static void write(CheckpointWriter writer, int rank, Map<String, StateSlice> state, ParameterStore params) {
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        Map<String, Object> layout = new LinkedHashMap<>();
        for (Map.Entry<String, StateSlice> e : state.entrySet()) {
            StateSlice s = e.getValue();
            tensors.put(e.getKey(), s.data().reshape(s.data().length()));
            layout.put(e.getKey(), Map.of("shape", s.fullShape(), "from", s.from()));
        }
        writer.writeOptimizerShard(rank, tensors, Map.of(SLICES, layout, PARAMETERS, parameterLayout(params)));
    }

    /**
     * Fills every slice of {@code into} from the checkpoint's optimizer files, whichever ranks wrote them. Every
     * element must be found, under the same name and full shape; otherwise the checkpoint was written by a
     * different optimizer or model and resuming is refused, as it is when the files' parameter layout differs
     * from {@code params}' (files written before layouts were recorded are taken as they are). State this rank
     * does not keep (another shard's tensors) is skipped.
     */
    public static void load(Checkpoint checkpoint, Map<String, StateSlice> into, ParameterStore params) {
        int ranks = checkpoint.optimizerRanks();
        if (ranks == 0) {
            throw new UserInputException("checkpoint " + checkpoint.dir() + " holds no optimizer state");
        }
        Map<String, List<long[]>> found = new LinkedHashMap<>(); // the runs of each slice that were read
        into.forEach((name, slice) -> found.put(name, new ArrayList<>()));
        List<List<Object>> expected = parameterLayout(params);
        for (int rank = 0; rank < ranks; rank++) {
            checkParameterLayout(checkpoint, rank, expected);
            Map<String, Object> layout = layoutOf(checkpoint, rank);
            try (SafeTensorsReader reader = checkpoint.openOptimizerShard(rank)) {
                Map<String, List<SafeTensorsReader.Piece>> pieces = new LinkedHashMap<>();
                List<Runnable> conversions = new ArrayList<>();
                for (Map.Entry<String, Object> e : layout.entrySet()) {
                    String name = e.getKey();
                    StateSlice target = into.get(name);
                    if (target == null) {
                        continue;
                    }
                    Map<?, ?> where = (Map<?, ?>) e.getValue();
                    long[] shape = ((List<?>) where.get("shape")).stream().mapToLong(v -> ((Number) v).longValue()).toArray();
                    if (!Arrays.equals(shape, target.fullShape())) {
                        throw mismatch(checkpoint, "has optimizer state " + name + " of shape " + Arrays.toString(shape)
                                + ", this optimizer keeps " + Arrays.toString(target.fullShape()));
                    }
                    long from = ((Number) where.get("from")).longValue();
                    planOverlap(reader, name, from, target, found.get(name), pieces, conversions);
                }
                // One pass over the file, straight into the optimizer's state (and hashed on the way).
                checkpoint.scan(reader, CheckpointLayout.optimizerShard(rank), pieces);
                conversions.forEach(Runnable::run);
            }
        }
        for (Map.Entry<String, List<long[]>> e : found.entrySet()) {
            long need = into.get(e.getKey()).data().length();
            long have = covered(e.getValue());
            if (have != need) {
                throw mismatch(checkpoint, "lacks " + (need - have) + " elements of optimizer state "
                        + e.getKey() + " (written by a different optimizer?)");
            }
        }
    }

    /**
     * Plans the read of the part of the stored run {@code [from, from + stored)} that falls inside {@code target}'s
     * run: straight into the state's memory (AdamW's moments are one run the size of the model), or, stored in
     * another dtype, into a copy converted after the read.
     */
    private static void planOverlap(SafeTensorsReader reader, String name, long from, StateSlice target,
                                    List<long[]> found, Map<String, List<SafeTensorsReader.Piece>> pieces,
                                    List<Runnable> conversions) {
        SafeTensors.Entry entry = reader.entry(name);
        long lo = Math.max(from, target.from());
        long hi = Math.min(from + entry.numel(), target.from() + target.data().length());
        if (hi <= lo) {
            return;
        }
        INDArray dst = target.data().reshape(target.data().length());
        SafeTensorsReader.Piece piece;
        if (reader.loadsDirectly(entry, dst.dataType()) && NativeBytes.isContiguous(dst)) {
            piece = new SafeTensorsReader.Piece(lo - from, dst, lo - target.from(), hi - lo);
        } else {
            INDArray staged = Nd4j.createUninitialized(entry.dtype().nd4j(), hi - lo);
            piece = new SafeTensorsReader.Piece(lo - from, staged, 0, hi - lo);
            conversions.add(() -> dst.get(NDArrayIndex.interval(lo - target.from(), hi - target.from())).assign(staged));
        }
        pieces.computeIfAbsent(name, n -> new ArrayList<>()).add(piece);
        found.add(new long[] {lo - target.from(), hi - target.from()});
    }

    /** How many elements the runs {@code [lo, hi)} cover together (replicated state is found in every file). */
    private static long covered(List<long[]> runs) {
        runs.sort((a, b) -> Long.compare(a[0], b[0]));
        long total = 0;
        long end = Long.MIN_VALUE;
        for (long[] run : runs) {
            long lo = Math.max(run[0], end);
            if (run[1] > lo) {
                total += run[1] - lo;
                end = run[1];
            }
        }
        return total;
    }

    /** [name, offset, numel] of every tensor, in buffer order. */
    private static List<List<Object>> parameterLayout(ParameterStore params) {
        List<List<Object>> out = new ArrayList<>();
        for (ParameterStore.Tensor t : params.tensors()) {
            out.add(List.of(t.name(), t.offset(), t.numel()));
        }
        return out;
    }

    private static void checkParameterLayout(Checkpoint checkpoint, int rank, List<List<Object>> expected) {
        Object stored = checkpoint.optimizerMetadata(rank).get(PARAMETERS);
        if (stored == null) {
            return;
        }
        List<?> written = stored instanceof List<?> list ? list : List.of();
        for (int i = 0; i < Math.max(written.size(), expected.size()); i++) {
            List<?> was = i < written.size() && written.get(i) instanceof List<?> w ? w : null;
            List<Object> now = i < expected.size() ? expected.get(i) : null;
            if (was == null || now == null || !same(was, now)) {
                throw mismatch(checkpoint, "laid its optimizer state over the parameters as " + describe(was)
                        + " where this model has " + describe(now) + " (tensor " + i + " of the flat buffer)");
            }
        }
    }

    private static boolean same(List<?> was, List<Object> now) {
        return was.size() == 3 && now.get(0).equals(was.get(0)) && was.get(1) instanceof Number offset
                && offset.longValue() == (Long) now.get(1) && was.get(2) instanceof Number numel
                && numel.longValue() == (Long) now.get(2);
    }

    private static String describe(List<?> entry) {
        return entry == null || entry.size() != 3 ? "nothing"
                : entry.get(0) + " at offset " + entry.get(1) + " (" + entry.get(2) + " elements)";
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> layoutOf(Checkpoint checkpoint, int rank) {
        Object layout = checkpoint.optimizerMetadata(rank).get(SLICES);
        if (!(layout instanceof Map)) {
            throw mismatch(checkpoint, "has an optimizer file for rank " + rank + " without its layout");
        }
        return (Map<String, Object>) layout;
    }

    private static UserInputException mismatch(Checkpoint checkpoint, String what) {
        return new UserInputException("checkpoint " + checkpoint.dir() + " " + what
                + "; resume with the optimizer and model settings it was written with");
    }
}
