package dev.tessera.worker.run;

import com.esotericsoftware.kryo.kryo5.Kryo;
import com.esotericsoftware.kryo.kryo5.Serializer;
import com.esotericsoftware.kryo.kryo5.io.Input;
import com.esotericsoftware.kryo.kryo5.io.Output;
import dev.tessera.comm.UserInputException;
import dev.tessera.comm.control.ControlCodec;
import dev.tessera.worker.model.ExpertShard;
import dev.tessera.worker.parallel.Mesh;
import dev.tessera.comm.control.ControlMessage;
import dev.tessera.comm.control.ControlType;
import dev.tessera.comm.control.RecordSerializer;
import java.util.List;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Coordinator to worker: this process's rank, the experts of each MoE layer it holds (its share of its expert
 * group's under {@code mesh.ep}, else all) and its job. On the wire: {@link #VERSION}, the rank, the experts,
 * then the {@link WorkerJob} field by field ({@link RecordSerializer}). A worker of another build may meet a version it
 * cannot read: it still learns the version and its rank, and refuses the job saying so ({@link #readableJob}).
 */
public record Assignment(int version, int rank, ExpertShard experts, WorkerJob job) implements ControlMessage {

    /** The layout of {@link WorkerJob} on the wire; one more whenever a field of the spec changes. */
    public static final int VERSION = 6;

    static final RecordSerializer<WorkerJob> JOB = new RecordSerializer<>(WorkerJob.class);

    /** What a communicator that sends or receives assignments adds to its codec. */
    public static final List<ControlType<?>> CONTROL_TYPES = List.of(
            new ControlType<>(ControlCodec.FIRST_EXTENSION_ID, Assignment.class, new Wire()));

    /** Rank {@code rank}'s assignment, its experts planned from the job's mesh. */
    public Assignment(int rank, WorkerJob job) {
        this(VERSION, rank, expertsOf(rank, job), job);
    }

    /** The experts {@code rank} holds: an equal, contiguous share of every expert of its expert group. */
    static ExpertShard expertsOf(int rank, WorkerJob job) {
        int experts = job.model().nExperts();
        Mesh mesh = job.spec().mesh().toMesh();
        if (experts == 0 || mesh.ep() == 1) {
            return ExpertShard.all(experts);
        }
        Mesh.Range owned = mesh.ownedExperts(rank, experts);
        return new ExpertShard(owned.start(), owned.size());
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
            out.writeVarInt(m.experts.first(), true);
            out.writeVarInt(m.experts.count(), true);
            JOB.write(kryo, out, m.job);
        }

        @Override
        public Assignment read(Kryo kryo, Input in, Class<? extends Assignment> type) {
            int version = in.readVarInt(true);
            int rank = in.readInt();
            if (version != VERSION) {
                in.setPosition(in.limit()); // the rest is another build's layout; readableJob() says so
                return new Assignment(version, rank, null, null);
            }
            ExpertShard experts = new ExpertShard(in.readVarInt(true), in.readVarInt(true));
            return new Assignment(version, rank, experts, JOB.read(kryo, in, WorkerJob.class));
        }
    }
}
