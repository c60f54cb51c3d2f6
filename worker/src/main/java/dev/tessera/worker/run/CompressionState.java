package dev.tessera.worker.run;

import dev.tessera.comm.UserInputException;
import dev.tessera.comm.compress.BucketReduction;
import dev.tessera.worker.checkpoint.Checkpoint;
import dev.tessera.worker.checkpoint.CheckpointWriter;
import dev.tessera.worker.checkpoint.SafeTensorsReader;
import dev.tessera.worker.parallel.CompressedGradients;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.agrona.MutableDirectBuffer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A rank's gradient-compression state in checkpoints: each bucket's {@link BucketReduction#state} as
 * {@code <name>.<bucket>} (its error-feedback residual, empty for a codec without error feedback, and PowerSGD's
 * warm-started Qs), the round, and L-GreCo's choices (the one in force, and rank 0's solved one not yet broadcast), so a resumed run
 * encodes the same bits. Resuming onto another number of
 * data-parallel ranks, rank {@code r} takes the sum of the old ranks {@code r, r + N, r + 2N, ...}: the residuals
 * are what the old ranks still owe the sum, and that total is kept. QSGD's owners' residuals ({@code owner_residual},
 * {@link dev.tessera.comm.compress.ScatteredReduction}) belong to chunks that another number of ranks cuts
 * differently, so such a resume starts them at zero and loses what they owed (one step's second rounding).
 */
final class CompressionState {

    private static final String ROUND = "round";
    private static final String CHOICE = "lgreco_choice";
    private static final String PENDING = "lgreco_pending";

    private CompressionState() {
    }

    static void write(CheckpointWriter writer, int rank, CompressedGradients gradients) {
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        List<BucketReduction> reductions = gradients.reductions();
        for (int b = 0; b < reductions.size(); b++) {
            for (Map.Entry<String, MutableDirectBuffer> e : reductions.get(b).state().entrySet()) {
                MutableDirectBuffer buffer = e.getValue();
                if (buffer.capacity() == 0) {
                    continue;
                }
                float[] values = new float[buffer.capacity() / 4];
                for (int i = 0; i < values.length; i++) {
                    values[i] = buffer.getFloat(4 * i);
                }
                tensors.put(e.getKey() + "." + b, Nd4j.createFromArray(values));
            }
        }
        Map<String, Object> metadata = new LinkedHashMap<>();
        metadata.put(ROUND, gradients.round());
        if (gradients.choice() != null) {
            metadata.put(CHOICE, gradients.choice());
            metadata.put(PENDING, gradients.pendingChoice());
        }
        writer.writeCompressionState(rank, tensors, metadata);
    }

    /** Fills {@code gradients}' residuals for data-parallel rank {@code rank} of {@code ranks}; nothing if none kept. */
    static void load(Checkpoint checkpoint, int rank, int ranks, CompressedGradients gradients) {
        int written = checkpoint.compressionRanks();
        int[] choice = null;
        int[] pending = null;
        if (written > 0) { // the choice in force is every rank's; a solved one waiting for its broadcast, rank 0's
            try (SafeTensorsReader reader = checkpoint.openCompressionState(0)) {
                Map<String, Object> metadata = checkpoint.rankFileMetadata(reader, 0);
                choice = ints(metadata.get(CHOICE));
                pending = rank == 0 ? ints(metadata.get(PENDING)) : null;
            }
        }
        gradients.resumeAt(checkpoint.step(), choice, pending);
        List<BucketReduction> reductions = gradients.reductions();
        for (int old = rank; old < written; old += ranks) {
            try (SafeTensorsReader reader = checkpoint.openCompressionState(old)) {
                for (int b = 0; b < reductions.size(); b++) {
                    for (Map.Entry<String, MutableDirectBuffer> e : reductions.get(b).state().entrySet()) {
                        // Residuals are what each old rank still owes the sum, so they add up; a warm start is the
                        // same on every rank, so each new rank takes its first old one's.
                        boolean residual = e.getKey().equals("residual");
                        // An owner's residual is laid out by the chunks of its old group's size, which another size
                        // cuts differently; it is one step's rounding of a summed chunk, so it is dropped, not mapped.
                        boolean owners = e.getKey().equals("owner_residual");
                        if (e.getValue().capacity() > 0 && (residual || old == rank) && !(owners && written != ranks)) {
                            read(checkpoint, reader, old, e.getKey() + "." + b, e.getValue(), residual);
                        }
                    }
                }
            }
        }
    }

    private static void read(Checkpoint checkpoint, SafeTensorsReader reader, int old, String name,
                             MutableDirectBuffer into, boolean add) {
        if (!reader.contains(name)) {
            throw new UserInputException("checkpoint " + checkpoint.dir() + " has no " + name + " for rank " + old
                    + ": it was written with other gradient buckets or compression settings; resume with the same"
                    + " model and compression settings");
        }
        INDArray stored = reader.read(name);
        if (stored.length() * 4 != into.capacity()) {
            throw new UserInputException("checkpoint " + checkpoint.dir() + " has " + name + " of " + stored.length()
                    + " elements for rank " + old + ", this run's holds " + into.capacity() / 4 + "; resume with the"
                    + " same model and compression settings");
        }
        for (int i = 0; i < stored.length(); i++) {
            into.putFloat(4 * i, (add ? into.getFloat(4 * i) : 0f) + stored.getFloat(i));
        }
    }

    private static int[] ints(Object json) {
        return json instanceof List<?> list ? list.stream().mapToInt(v -> ((Number) v).intValue()).toArray() : null;
    }
}
