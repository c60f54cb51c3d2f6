package dev.tessera.worker.run;

import com.esotericsoftware.kryo.kryo5.Kryo;
import com.esotericsoftware.kryo.kryo5.Serializer;
import com.esotericsoftware.kryo.kryo5.io.Input;
import com.esotericsoftware.kryo.kryo5.io.Output;
import dev.tessera.comm.UserInputException;
import dev.tessera.comm.control.ControlCodec;
import dev.tessera.comm.control.ControlMessage;
import dev.tessera.comm.control.ControlType;
import dev.tessera.comm.control.RecordSerializer;
import java.util.List;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Coordinator to worker: this process's rank and its job. On the wire: {@link #VERSION}, the rank, then the
 * {@link WorkerJob} field by field ({@link RecordSerializer}). A worker of another build may meet a version it
 * cannot read: it still learns the version and its rank, and refuses the job saying so ({@link #readableJob}).
 */
public record Assignment(int version, int rank, WorkerJob job) implements ControlMessage {

    /** The layout of {@link WorkerJob} on the wire; one more whenever a field of the spec changes. */
    public static final int VERSION = 4;

    static final RecordSerializer<WorkerJob> JOB = new RecordSerializer<>(WorkerJob.class);

    /** What a communicator that sends or receives assignments adds to its codec. */
    public static final List<ControlType<?>> CONTROL_TYPES = List.of(
            new ControlType<>(ControlCodec.FIRST_EXTENSION_ID, Assignment.class, new Wire()));

    public Assignment(int rank, WorkerJob job) {
        this(VERSION, rank, job);
    }

    /** The job, or a clear failure when the coordinator wrote a layout this worker cannot read. */
    public WorkerJob readableJob() {
        if (version != VERSION || job == null) {
            throw new IllegalStateException("rank " + rank + " received a job spec of version " + version
                    + ", but this worker reads version " + VERSION + "; run the coordinator and its workers from"
                    + " the same Tessera build");
        }
        return job;
    }

    /**
     * Refuses, before any worker starts, a job whose assignment would not fit in one control message: only its
     * paths can make it grow.
     */
    public static void requireFits(WorkerJob job) {
        ControlCodec codec = new ControlCodec(CONTROL_TYPES);
        try {
            codec.encode(new Assignment(0, job), new UnsafeBuffer(new byte[ControlCodec.MAX_MESSAGE_BYTES]), 0);
        } catch (IllegalArgumentException e) {
            throw new UserInputException("the job does not fit in the " + ControlCodec.MAX_MESSAGE_BYTES
                    + " bytes of the control message that carries it to the workers; shorten data.path or the"
                    + " run directory (out)");
        }
    }

    /** Version and rank first, so that any later layout can still be recognised and refused. */
    private static final class Wire extends Serializer<Assignment> {
        @Override
        public void write(Kryo kryo, Output out, Assignment m) {
            out.writeVarInt(m.version, true);
            out.writeInt(m.rank);
            JOB.write(kryo, out, m.job);
        }

        @Override
        public Assignment read(Kryo kryo, Input in, Class<? extends Assignment> type) {
            int version = in.readVarInt(true);
            int rank = in.readInt();
            if (version != VERSION) {
                in.setPosition(in.limit()); // the rest is another build's layout; readableJob() says so
                return new Assignment(version, rank, null);
            }
            return new Assignment(version, rank, JOB.read(kryo, in, WorkerJob.class));
        }
    }
}
