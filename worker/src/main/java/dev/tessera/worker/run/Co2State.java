package dev.tessera.worker.run;

import dev.tessera.comm.UserInputException;
import dev.tessera.optimizers.StateSlice;
import dev.tessera.worker.checkpoint.Checkpoint;
import dev.tessera.worker.checkpoint.CheckpointWriter;
import dev.tessera.worker.checkpoint.SafeTensorsReader;
import dev.tessera.worker.train.Co2Step;
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
 * pending, that average, finished ({@code co2.pending_average}; {@link Co2Step#settle} waits for it first) with
 * its round in the metadata, and with {@code co2.keep_local_progress} the rank's own progress of the last round
 * ({@code co2.local_progress}). The rank's inner optimizer state is its own optimizer file; the model files hold the
 * outer parameters {@code x_t}, the last point every rank agreed on.
 *
 * <p>Resuming onto another number of data-parallel ranks, rank {@code r} takes old rank {@code r mod N}'s local
 * parameters and inner optimizer state; the outer state and the pending average are every rank's. A checkpoint of
 * a run without CO2 has no such files: CO2 then starts afresh from its parameters.
 */
final class Co2State {

    private static final String LIVE = "live";
    private static final String PENDING = "co2.pending_average";
    private static final String CARRY = "co2.local_progress";
    private static final String PENDING_ROUND = "pending_round";

    private Co2State() {
    }

    static void write(CheckpointWriter writer, int rank, Co2Step co2, INDArray params) {
        co2.settle();
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        tensors.put(LIVE, params.reshape(params.length()));
        co2.outer().state().forEach((name, slice) -> tensors.put(name, slice.data()));
        if (co2.pendingAverage() != null) {
            tensors.put(PENDING, copy(co2.pendingAverage()));
        }
        if (co2.carry() != null) {
            tensors.put(CARRY, copy(co2.carry()));
        }
        writer.writeCo2State(rank, tensors, Map.of(PENDING_ROUND, co2.pendingRound()));
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
            for (Map.Entry<String, StateSlice> e : co2.outer().state().entrySet()) {
                require(checkpoint, reader, old, e.getKey());
                reader.read(e.getKey(), e.getValue().data());
            }
            Object round = checkpoint.compressionMetadata(reader, old).get(PENDING_ROUND);
            long pendingRound = round instanceof Number n ? n.longValue() : -1;
            if (pendingRound >= 0) {
                co2.resumePending(pendingRound, read(checkpoint, reader, old, PENDING, params.length()));
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
