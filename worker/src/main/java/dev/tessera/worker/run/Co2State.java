package dev.tessera.worker.run;

import dev.tessera.comm.UserInputException;
import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.StateSlice;
import dev.tessera.optimizers.kernel.NativeMemory;
import dev.tessera.worker.checkpoint.Checkpoint;
import dev.tessera.worker.checkpoint.CheckpointWriter;
import dev.tessera.worker.checkpoint.SafeTensorsReader;
import dev.tessera.worker.train.Co2Step;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.Map;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A CO2 rank's state in checkpoints ({@code co2/rank-NNNNN.safetensors}), so that a run stopped mid-round resumes
 * bit-identically: the rank's local parameters ({@code live}: between round ends each rank holds its own), the
 * outer state ({@code co2.x_prev}, {@code co2.x}, {@code co2.outer_momentum}) and, when a round's average is
 * pending, that average, finished ({@code co2.pending_average}; {@link Co2Step#settle} waits for it first; a
 * compressed run's mean outer delta, {@code co2.pending_mean_delta}, which a run of the other kind refuses) with
 * its round in the metadata, and with {@code co2.keep_local_progress} the rank's own progress of the last round
 * ({@code co2.local_progress}). The rank's inner optimizer state is its own optimizer file; the model files hold the
 * outer parameters {@code x_t}, the last point every rank agreed on.
 *
 * <p>With {@code co2.shard_outer_state} a rank's file holds the outer state and the pending average of its own
 * range only; the metadata records the range ({@code outer_from}, {@code outer_to}; a file without them holds
 * all the parameters, as an unsharded rank's does). Resuming, each rank assembles its outer step's range from the
 * files whose ranges cover it, in rank order (sharded files hold disjoint ranges, unsharded ones everything), so a
 * resume onto another number of ranks, or between sharded and unsharded runs, gets every element's outer state.
 *
 * <p>Resuming onto another number of data-parallel ranks, rank {@code r} takes old rank {@code r mod N}'s local
 * parameters and inner optimizer state; the outer state and the pending average are every rank's. A checkpoint of
 * a run without CO2 has no such files: CO2 then starts afresh from its parameters.
 */
final class Co2State {

    private static final String LIVE = "live";
    private static final String PENDING = "co2.pending_average";
    private static final String PENDING_DELTA = "co2.pending_mean_delta"; // compressed: Co2Step#averagesDeltas
    private static final String CARRY = "co2.local_progress";
    private static final String PENDING_ROUND = "pending_round";
    private static final String FROM = "outer_from";
    private static final String TO = "outer_to";

    private Co2State() {
    }

    static void write(CheckpointWriter writer, int rank, Co2Step co2, INDArray params) {
        co2.settle();
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        tensors.put(LIVE, params.reshape(params.length()));
        co2.outer().state().forEach((name, slice) -> tensors.put(name, slice.data()));
        if (co2.pendingAverage() != null) {
            tensors.put(pendingName(co2), copy(co2.pendingAverage()));
        }
        if (co2.carry() != null) {
            tensors.put(CARRY, copy(co2.carry()));
        }
        Shard range = co2.outer().range();
        writer.writeCo2State(rank, tensors, Map.of(PENDING_ROUND, co2.pendingRound(), FROM, range.from(),
                TO, range.to()));
    }

    /** The old rank whose state data-parallel rank {@code rank} resumes from; -1 when the checkpoint has none. */
    static int source(Checkpoint checkpoint, int rank) {
        int written = checkpoint.co2Ranks();
        return written == 0 ? -1 : rank % written;
    }

    /** Fills {@code co2} and {@code params} from old rank {@code old}'s file ({@link #source}). */
    static void load(Checkpoint checkpoint, int old, Co2Step co2, INDArray params) {
        try (SafeTensorsReader reader = checkpoint.openCo2State(old)) {
            reader.read(LIVE, params.reshape(params.length()));
            Map<String, Object> meta = checkpoint.rankFileMetadata(reader, old);
            Object round = meta.get(PENDING_ROUND);
            long pendingRound = round instanceof Number n ? n.longValue() : -1;
            Shard want = co2.outer().range();
            if (rangeOf(meta, params.length()).equals(want)) { // the same range (same dp and sharding): one file
                for (Map.Entry<String, StateSlice> e : co2.outer().state().entrySet()) {
                    require(checkpoint, reader, old, e.getKey());
                    reader.read(e.getKey(), e.getValue().data());
                }
                if (pendingRound >= 0) {
                    co2.resumePending(pendingRound, read(checkpoint, reader, old, pendingName(checkpoint, reader,
                            old, co2), want.length()));
                }
            } else {
                assemble(checkpoint, co2, params.length(), pendingRound);
            }
            if (co2.carry() != null) { // a checkpoint of a run that did not keep its progress: none to keep
                UnsafeBuffer carry = co2.carry();
                if (reader.contains(CARRY)) {
                    carry.putBytes(0, read(checkpoint, reader, old, CARRY, params.length()), 0, carry.capacity());
                } else {
                    carry.setMemory(0, carry.capacity(), (byte) 0);
                }
            }
        }
    }

    /** The range a co2 file's metadata records; a file without one (unsharded, or older) holds everything. */
    private static Shard rangeOf(Map<String, Object> meta, long numel) {
        return meta.get(FROM) instanceof Number from && meta.get(TO) instanceof Number to
                ? new Shard(from.longValue(), to.longValue()) : Shard.whole(numel);
    }

    /**
     * The outer state and pending average of {@code co2}'s range from every file that covers part of it, in rank
     * order: each file extends what the files before it covered (sharded files hold consecutive disjoint ranges,
     * an unsharded one all). A resume onto another dp, or between sharded and unsharded runs, takes this path;
     * it allocates, once.
     */
    private static void assemble(Checkpoint checkpoint, Co2Step co2, long numel, long pendingRound) {
        Shard want = co2.outer().range();
        Map<String, StateSlice> state = co2.outer().state();
        UnsafeBuffer pending = pendingRound >= 0
                ? new UnsafeBuffer(ByteBuffer.allocateDirect((int) (want.length() * Float.BYTES))) : null;
        long covered = want.from();
        int files = checkpoint.co2Ranks();
        for (int rank = 0; rank < files && covered < want.to(); rank++) {
            try (SafeTensorsReader reader = checkpoint.openCo2State(rank)) {
                Map<String, Object> meta = checkpoint.rankFileMetadata(reader, rank);
                Shard has = rangeOf(meta, numel);
                if (has.from() > covered || has.to() <= covered) {
                    continue;
                }
                Object round = meta.get(PENDING_ROUND);
                long fileRound = round instanceof Number n ? n.longValue() : -1;
                if (fileRound != pendingRound) {
                    throw new UserInputException("checkpoint " + checkpoint.dir() + ": rank " + rank + "'s CO2 state"
                            + " has the average of round " + fileRound + " pending, another rank's of round "
                            + pendingRound + "; resume from a checkpoint whose CO2 files were written together");
                }
                long end = Math.min(has.to(), want.to());
                for (Map.Entry<String, StateSlice> e : state.entrySet()) {
                    require(checkpoint, reader, rank, e.getKey());
                    INDArray stored = Nd4j.createUninitialized(DataType.FLOAT, has.length());
                    reader.read(e.getKey(), stored);
                    NativeMemory.unsafe(e.getValue().data(), covered - want.from(), end - want.from()).putBytes(0,
                            NativeMemory.unsafe(stored, covered - has.from(), end - has.from()), 0,
                            (int) ((end - covered) * Float.BYTES));
                    Reference.reachabilityFence(stored); // the view holds an address, not the array
                }
                if (pending != null) {
                    DirectBuffer stored = read(checkpoint, reader, rank, pendingName(checkpoint, reader, rank, co2),
                            has.length());
                    pending.putBytes((int) ((covered - want.from()) * Float.BYTES), stored,
                            (int) ((covered - has.from()) * Float.BYTES), (int) ((end - covered) * Float.BYTES));
                }
                covered = end;
            }
        }
        if (covered < want.to()) {
            throw new UserInputException("checkpoint " + checkpoint.dir() + ": no CO2 state file covers parameters "
                    + covered + " to " + want.to() + " of the outer state (" + files + " rank files); resume from a"
                    + " checkpoint with all its co2/rank-N.safetensors files");
        }
        if (pending != null) {
            co2.resumePending(pendingRound, pending);
        }
    }

    /** What this run's pending tensor is called: a mean delta when it compresses, else an average of parameters. */
    private static String pendingName(Co2Step co2) {
        return co2.averagesDeltas() ? PENDING_DELTA : PENDING;
    }

    /** {@link #pendingName}, checked against what rank {@code old}'s file holds: the two kinds do not mix. */
    private static String pendingName(Checkpoint checkpoint, SafeTensorsReader reader, int old, Co2Step co2) {
        String want = pendingName(co2);
        String other = co2.averagesDeltas() ? PENDING : PENDING_DELTA;
        if (!reader.contains(want) && reader.contains(other)) {
            throw new UserInputException("checkpoint " + checkpoint.dir() + ": rank " + old + "'s CO2 average in"
                    + " flight was sent " + (co2.averagesDeltas() ? "uncompressed" : "compressed") + ", and this run"
                    + " sends it " + (co2.averagesDeltas() ? "compressed" : "uncompressed") + "; resume with the"
                    + " checkpoint's compression.method");
        }
        return want;
    }

    private static INDArray copy(DirectBuffer buffer) {
        float[] values = new float[buffer.capacity() / Float.BYTES];
        for (int i = 0; i < values.length; i++) {
            values[i] = buffer.getFloat(Float.BYTES * i);
        }
        return Nd4j.createFromArray(values);
    }

    private static DirectBuffer read(Checkpoint checkpoint, SafeTensorsReader reader, int old, String name,
                                     long length) {
        require(checkpoint, reader, old, name);
        INDArray stored = Nd4j.createUninitialized(DataType.FLOAT, length);
        reader.read(name, stored);
        float[] values = stored.toFloatVector();
        UnsafeBuffer buffer = new UnsafeBuffer(ByteBuffer.allocateDirect(values.length * Float.BYTES));
        for (int i = 0; i < values.length; i++) {
            buffer.putFloat(Float.BYTES * i, values[i]);
        }
        return buffer;
    }

    private static void require(Checkpoint checkpoint, SafeTensorsReader reader, int old, String name) {
        if (!reader.contains(name)) {
            throw new UserInputException("checkpoint " + checkpoint.dir() + " has no " + name + " in rank " + old
                    + "'s CO2 state: it was written by another version or model; resume with the same model");
        }
    }
}
