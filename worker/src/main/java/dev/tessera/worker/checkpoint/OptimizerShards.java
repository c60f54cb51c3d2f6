package dev.tessera.worker.checkpoint;

import dev.tessera.comm.UserInputException;
import dev.tessera.optimizers.StateSlice;
import java.util.Arrays;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Optimizer state in checkpoints, one file per rank ({@code optimizer/rank-0000r.safetensors}), with its layout:
 * each state tensor is stored as the 1-D run of its flattened elements that the rank held, and the metadata
 * records the full shape and where the run starts. Loading assembles whatever runs a new partitioning needs from
 * every old rank's file, so a checkpoint written by W ranks at any ZeRO stage resumes on any other world size
 * and stage (resharding); replicated statistics are simply found in every file.
 */
public final class OptimizerShards {

    static final String SLICES = "slices";

    private OptimizerShards() {
    }

    /** Writes {@code rank}'s optimizer state into the staging folder of {@code writer}. */
    public static void write(CheckpointWriter writer, int rank, Map<String, StateSlice> state) {
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        Map<String, Object> layout = new LinkedHashMap<>();
        for (Map.Entry<String, StateSlice> e : state.entrySet()) {
            StateSlice s = e.getValue();
            tensors.put(e.getKey(), s.data().reshape(s.data().length()));
            layout.put(e.getKey(), Map.of("shape", s.fullShape(), "from", s.from()));
        }
        writer.writeOptimizerShard(rank, tensors, Map.of(SLICES, layout));
    }

    /**
     * Fills every slice of {@code into} from the checkpoint's optimizer files, whichever ranks wrote them. Every
     * element must be found, under the same name and full shape; otherwise the checkpoint was written by a
     * different optimizer or model and resuming is refused. State this rank does not keep (another shard's
     * tensors) is skipped.
     */
    public static void load(Checkpoint checkpoint, Map<String, StateSlice> into) {
        int ranks = checkpoint.optimizerRanks();
        if (ranks == 0) {
            throw new UserInputException("checkpoint " + checkpoint.dir() + " holds no optimizer state");
        }
        Map<String, BitSet> found = new LinkedHashMap<>();
        into.forEach((name, slice) -> found.put(name, new BitSet(Math.toIntExact(slice.data().length()))));
        for (int rank = 0; rank < ranks; rank++) {
            Map<String, Object> layout = layoutOf(checkpoint, rank);
            try (SafeTensorsReader reader = checkpoint.openOptimizerShard(rank)) {
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
                    copyOverlap(reader, name, from, target, found.get(name));
                }
            }
        }
        for (Map.Entry<String, BitSet> e : found.entrySet()) {
            long need = into.get(e.getKey()).data().length();
            if (e.getValue().cardinality() != need) {
                throw mismatch(checkpoint, "lacks " + (need - e.getValue().cardinality()) + " elements of optimizer state "
                        + e.getKey() + " (written by a different optimizer?)");
            }
        }
    }

    /** Copies the part of the stored run {@code [from, from + stored)} that falls inside {@code target}'s run. */
    private static void copyOverlap(SafeTensorsReader reader, String name, long from, StateSlice target, BitSet found) {
        long stored = reader.entry(name).numel();
        long lo = Math.max(from, target.from());
        long hi = Math.min(from + stored, target.from() + target.data().length());
        if (hi <= lo) {
            return;
        }
        INDArray run = reader.read(name);
        INDArray dst = target.data().reshape(target.data().length());
        dst.get(NDArrayIndex.interval(lo - target.from(), hi - target.from()))
                .assign(run.get(NDArrayIndex.interval(lo - from, hi - from)));
        found.set(Math.toIntExact(lo - target.from()), Math.toIntExact(hi - target.from()));
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
