package dev.tessera.worker.checkpoint;

import dev.tessera.comm.UserInputException;
import dev.tessera.optimizers.StateSlice;
import dev.tessera.worker.model.ParameterStore;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
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
 * <p>State comes in two kinds. Per-tensor state (CAME's and Adafactor's {@code <optimizer>.<tensor>.<stat>}) has
 * the tensor's own shape and means the same in any layout. Flat state (AdamW's moments) is one run over the whole
 * flat parameter buffer, so its elements mean something only with that buffer's layout: every file records the
 * layout it was written with (each tensor's name, offset and size) and loading translates the run tensor by tensor
 * into the loading model's layout, by name. So state written by expert-parallel ranks (each buffer holding the
 * dense tensors and only its own experts, at offsets of its own) loads into any other expert partitioning, and
 * state of tensors the loader lacks (other ranks' experts) is passed over.
 *
 * <p>A rank whose optimizer is made of parts ({@link dev.tessera.optimizers.OptimizerParts}: ZeRO under expert
 * parallelism shards the dense tensors and the experts over different groups) writes one file per part, numbered
 * {@code rank * parts + part}; each part's flat state is a run of its own over the same buffer, and loading finds
 * every part's runs in whichever files hold them.
 */
public final class OptimizerShards {

    static final String SLICES = "slices";
    static final String PARAMETERS = "parameters";

    private OptimizerShards() {
    }

    /**
     * Writes optimizer file {@code rank} (a rank's state, or one part of it), kept over {@code params}' buffers, to
     * {@code writer}'s staging folder.
     */
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
     * Fills every slice of {@code into} from the checkpoint's optimizer files, whichever ranks wrote them and
     * whatever parameter layout they had. Per-tensor state is taken by name; flat state (one run over the parameter
     * buffer, such as AdamW's moments) is translated tensor by tensor from each file's recorded layout into
     * {@code params}' (files written before layouts were recorded are taken as laid out like {@code params}).
     * Every element must be found, under the same name and shape; otherwise the checkpoint was written by a
     * different optimizer or model and resuming is refused, naming the state and, for flat state, the tensor.
     * State this rank does not keep (another shard's elements, another expert-parallel rank's experts) is skipped;
     * state several files hold (replicated) is taken from any. Each file is read once, hashed on the way.
     */
    public static void load(Checkpoint checkpoint, Map<String, StateSlice> into, ParameterStore params) {
        load(checkpoint, List.of(into), params);
    }

    /**
     * As {@link #load(Checkpoint, Map, ParameterStore)} into every part of an optimizer made of several
     * ({@link dev.tessera.optimizers.Optimizer#stateParts}): each part's state is found whole, whichever files hold
     * it, and each file is still read once for all parts.
     */
    public static void load(Checkpoint checkpoint, List<Map<String, StateSlice>> parts, ParameterStore params) {
        int ranks = checkpoint.optimizerRanks();
        if (ranks == 0) {
            throw new UserInputException("checkpoint " + checkpoint.dir() + " holds no optimizer state");
        }
        load(checkpoint, parts, params, 0, ranks);
    }

    /**
     * As {@link #load(Checkpoint, Map, ParameterStore)} from optimizer file {@code rank} alone, which must hold all
     * of {@code into}: a CO2 rank's inner optimizer, whose state is its own and differs from its peers'.
     */
    public static void loadRank(Checkpoint checkpoint, int rank, Map<String, StateSlice> into,
                                ParameterStore params) {
        if (rank >= checkpoint.optimizerRanks()) {
            throw new UserInputException("checkpoint " + checkpoint.dir() + " has no optimizer state for rank "
                    + rank + " (it holds " + checkpoint.optimizerRanks() + " rank(s))");
        }
        load(checkpoint, List.of(into), params, rank, rank + 1);
    }

    private static void load(Checkpoint checkpoint, List<Map<String, StateSlice>> parts, ParameterStore params,
                             int firstRank, int endRank) {
        List<Map<String, List<long[]>>> found = new ArrayList<>(); // per part, the runs of each slice that were read
        for (Map<String, StateSlice> into : parts) {
            Map<String, List<long[]>> runs = new LinkedHashMap<>();
            into.forEach((name, slice) -> runs.put(name, new ArrayList<>()));
            found.add(runs);
        }
        Layout here = Layout.of(params);
        for (int rank = firstRank; rank < endRank; rank++) {
            try (SafeTensorsReader reader = checkpoint.openOptimizerShard(rank)) {
                Map<String, Object> metadata = checkpoint.optimizerMetadata(reader, rank);
                Map<String, Object> layout = layoutOf(checkpoint, rank, metadata);
                Layout written = Layout.parse(checkpoint, rank, metadata.get(PARAMETERS));
                List<Run> translation = null; // written's flat coordinates -> here's, made when flat state needs it
                Map<String, List<SafeTensorsReader.Piece>> pieces = new LinkedHashMap<>();
                List<Runnable> conversions = new ArrayList<>();
                for (Map.Entry<String, Object> e : layout.entrySet()) {
                    String name = e.getKey();
                    for (int p = 0; p < parts.size(); p++) {
                        StateSlice target = parts.get(p).get(name);
                        if (target == null) {
                            continue;
                        }
                        if (!(e.getValue() instanceof Map<?, ?> where)
                                || !(where.get("shape") instanceof List<?> dims)
                                || !(where.get("from") instanceof Number start)) {
                            throw mismatch(checkpoint, "has an optimizer file for rank " + rank
                                    + " with an unreadable layout of " + name);
                        }
                        long[] shape = dims.stream().mapToLong(v -> ((Number) v).longValue()).toArray();
                        long from = start.longValue();
                        List<long[]> runs = found.get(p).get(name);
                        if (written != null && isFlat(name, shape, target, written, here)) {
                            if (translation == null) {
                                translation = translate(checkpoint, rank, written, here);
                            }
                            planFlat(reader, name, from, target, translation, runs, pieces, conversions);
                            continue;
                        }
                        if (!Arrays.equals(shape, target.fullShape())) {
                            throw mismatch(checkpoint, "has optimizer state " + name + " of shape "
                                    + Arrays.toString(shape) + ", this optimizer keeps "
                                    + Arrays.toString(target.fullShape()));
                        }
                        planFlat(reader, name, from, target, List.of(new Run(0, 0, Long.MAX_VALUE)), runs, pieces,
                                conversions);
                    }
                }
                // One pass over the file, straight into the optimizer's state (and hashed on the way).
                checkpoint.scan(reader, CheckpointLayout.optimizerShard(rank), pieces);
                conversions.forEach(Runnable::run);
            }
        }
        for (int p = 0; p < parts.size(); p++) {
            for (Map.Entry<String, List<long[]>> e : found.get(p).entrySet()) {
                StateSlice slice = parts.get(p).get(e.getKey());
                List<long[]> gaps = gaps(e.getValue(), slice.data().length());
                if (!gaps.isEmpty()) {
                    long missing = gaps.stream().mapToLong(g -> g[1] - g[0]).sum();
                    throw mismatch(checkpoint, "lacks " + missing + " elements of optimizer state " + e.getKey()
                            + tensorsOf(e.getKey(), slice, gaps, here) + " (written by a different optimizer?)");
                }
            }
        }
    }

    /**
     * Flat state: a 1-D run over a whole parameter buffer in the file and in this optimizer, not named after a
     * tensor (per-tensor state is {@code <optimizer>.<tensor>.<stat>}, whatever its shape).
     */
    private static boolean isFlat(String name, long[] shape, StateSlice target, Layout written, Layout here) {
        long[] full = target.fullShape();
        return shape.length == 1 && shape[0] == written.numel && full.length == 1 && full[0] == here.numel
                && !namesTensor(name, written) && !namesTensor(name, here);
    }

    private static boolean namesTensor(String state, Layout layout) {
        int dot = state.indexOf('.');
        if (dot < 0) {
            return false;
        }
        String rest = state.substring(dot + 1);
        int last = rest.lastIndexOf('.');
        return layout.byName.containsKey(rest) || last > 0 && layout.byName.containsKey(rest.substring(0, last));
    }

    /**
     * Elements {@code [w, w + length)} of a writer's flat buffer are elements {@code [l, l + length)} of the
     * loader's: the same tensors, in the same order.
     */
    private record Run(long w, long l, long length) {
    }

    /**
     * The tensors both layouts have, as runs from {@code written}'s flat coordinates to {@code here}'s, neighbours
     * merged (one run when the layouts are the same). A tensor of another size is another model's.
     */
    private static List<Run> translate(Checkpoint checkpoint, int rank, Layout written, Layout here) {
        List<Run> runs = new ArrayList<>();
        for (Placed t : written.tensors) {
            Placed h = here.byName.get(t.name);
            if (h == null) {
                continue; // not this rank's (another expert-parallel rank's expert)
            }
            if (h.numel != t.numel) {
                throw mismatch(checkpoint, "laid its optimizer state (rank " + rank + ") over tensor " + t.name
                        + " of " + t.numel + " elements, where this model's has " + h.numel);
            }
            Run last = runs.isEmpty() ? null : runs.get(runs.size() - 1);
            if (last != null && last.w + last.length == t.offset && last.l + last.length == h.offset) {
                runs.set(runs.size() - 1, new Run(last.w, last.l, last.length + t.numel));
            } else {
                runs.add(new Run(t.offset, h.offset, t.numel));
            }
        }
        return runs;
    }

    /**
     * Plans the read of the stored run {@code [from, from + stored)} (in the writer's coordinates) through
     * {@code runs} into the part of it that falls inside {@code target}'s run (in the loader's): straight into the
     * state's memory (AdamW's moments are one run the size of the model), or, stored in another dtype, into a copy
     * converted after the read.
     */
    private static void planFlat(SafeTensorsReader reader, String name, long from, StateSlice target, List<Run> runs,
                                 List<long[]> found, Map<String, List<SafeTensorsReader.Piece>> pieces,
                                 List<Runnable> conversions) {
        SafeTensors.Entry entry = reader.entry(name);
        long storedEnd = from + entry.numel();
        long targetFrom = target.from();
        long targetEnd = targetFrom + target.data().length();
        INDArray dst = null;
        for (Run run : runs) {
            long shift = run.l - run.w; // loader coordinate = writer coordinate + shift
            long lo = Math.max(Math.max(from, run.w), targetFrom - shift);
            long hi = Math.min(Math.min(storedEnd, run.w + run.length), targetEnd - shift);
            if (hi <= lo) {
                continue;
            }
            if (dst == null) {
                dst = target.data().reshape(target.data().length());
            }
            long at = lo + shift - targetFrom;
            long count = hi - lo;
            SafeTensorsReader.Piece piece;
            if (reader.loadsDirectly(entry, dst.dataType()) && NativeBytes.isContiguous(dst)) {
                piece = new SafeTensorsReader.Piece(lo - from, dst, at, count);
            } else {
                INDArray staged = Nd4j.createUninitialized(entry.dtype().nd4j(), count);
                piece = new SafeTensorsReader.Piece(lo - from, staged, 0, count);
                INDArray into = dst;
                conversions.add(() -> into.get(NDArrayIndex.interval(at, at + count)).assign(staged));
            }
            pieces.computeIfAbsent(name, n -> new ArrayList<>()).add(piece);
            found.add(new long[] {at, at + count});
        }
    }

    /** The parts of {@code [0, length)} that the runs {@code [lo, hi)} leave uncovered (replicated state is found in every file). */
    private static List<long[]> gaps(List<long[]> runs, long length) {
        runs.sort((a, b) -> Long.compare(a[0], b[0]));
        List<long[]> gaps = new ArrayList<>();
        long end = 0;
        for (long[] run : runs) {
            if (run[0] > end) {
                gaps.add(new long[] {end, run[0]});
            }
            end = Math.max(end, run[1]);
        }
        if (end < length) {
            gaps.add(new long[] {end, length});
        }
        return gaps;
    }

    /** For flat state, {@code ", those of tensor X"}: which of this model's tensors the {@code gaps} fall in. */
    private static String tensorsOf(String name, StateSlice slice, List<long[]> gaps, Layout here) {
        long[] full = slice.fullShape();
        if (full.length != 1 || full[0] != here.numel || namesTensor(name, here)) {
            return "";
        }
        List<String> tensors = new ArrayList<>();
        for (Placed t : here.tensors) {
            for (long[] g : gaps) {
                if (t.offset < g[1] + slice.from() && g[0] + slice.from() < t.offset + t.numel) {
                    tensors.add(t.name);
                    break;
                }
            }
        }
        if (tensors.isEmpty()) {
            return "";
        }
        String more = tensors.size() > 3 ? " and " + (tensors.size() - 3) + " more" : "";
        return ", those of tensor" + (tensors.size() > 1 ? "s " : " ") + String.join(", ", tensors.subList(0,
                Math.min(3, tensors.size()))) + more + ", which no optimizer file holds";
    }

    /** [name, offset, numel] of every tensor, in buffer order. */
    private static List<List<Object>> parameterLayout(ParameterStore params) {
        List<List<Object>> out = new ArrayList<>();
        for (ParameterStore.Tensor t : params.tensors()) {
            out.add(List.of(t.name(), t.offset(), t.numel()));
        }
        return out;
    }

    private record Placed(String name, long offset, long numel) {
    }

    /** A flat buffer's layout: its tensors in buffer order, by name, and its size. */
    private static final class Layout {
        final List<Placed> tensors;
        final Map<String, Placed> byName = new HashMap<>();
        final long numel;

        Layout(List<Placed> tensors) {
            this.tensors = tensors;
            long end = 0;
            for (Placed t : tensors) {
                byName.put(t.name, t);
                end = Math.max(end, t.offset + t.numel);
            }
            this.numel = end;
        }

        static Layout of(ParameterStore params) {
            List<Placed> out = new ArrayList<>();
            for (ParameterStore.Tensor t : params.tensors()) {
                out.add(new Placed(t.name(), t.offset(), t.numel()));
            }
            return new Layout(out);
        }

        /** The layout a file recorded, in buffer order; null when it recorded none (written before layouts were). */
        static Layout parse(Checkpoint checkpoint, int rank, Object stored) {
            if (stored == null) {
                return null;
            }
            if (!(stored instanceof List<?> list)) {
                throw unreadable(checkpoint, rank);
            }
            List<Placed> out = new ArrayList<>();
            for (Object item : list) {
                if (!(item instanceof List<?> t && t.size() == 3 && t.get(0) instanceof String name
                        && t.get(1) instanceof Number offset && t.get(2) instanceof Number numel
                        && offset.longValue() >= 0 && numel.longValue() >= 0)) {
                    throw unreadable(checkpoint, rank);
                }
                out.add(new Placed(name, offset.longValue(), numel.longValue()));
            }
            out.sort((a, b) -> Long.compare(a.offset, b.offset));
            return new Layout(out);
        }

        private static UserInputException unreadable(Checkpoint checkpoint, int rank) {
            return mismatch(checkpoint, "has an optimizer file for rank " + rank + " with an unreadable parameter layout");
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> layoutOf(Checkpoint checkpoint, int rank, Map<String, Object> metadata) {
        Object layout = metadata.get(SLICES);
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
