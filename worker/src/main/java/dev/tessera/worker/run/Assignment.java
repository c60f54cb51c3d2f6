package dev.tessera.worker.run;

import com.esotericsoftware.kryo.kryo5.Kryo;
import com.esotericsoftware.kryo.kryo5.Serializer;
import com.esotericsoftware.kryo.kryo5.io.Input;
import com.esotericsoftware.kryo.kryo5.io.Output;
import dev.tessera.comm.UserInputException;
import dev.tessera.comm.control.ControlCodec;
import dev.tessera.worker.model.ExpertShard;
import dev.tessera.worker.parallel.Mesh;
import dev.tessera.worker.parallel.Parallelize;
import dev.tessera.comm.control.ControlMessage;
import dev.tessera.comm.control.ControlType;
import dev.tessera.comm.control.RecordSerializer;
import java.util.List;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Coordinator to worker: this process's rank, the experts of each MoE layer it holds (its share of its expert
 * group's under {@code mesh.ep}, else all), the positions of each sequence it holds (its segment under
 * {@code mesh.sp}, else all) and its job. On the wire: {@link #VERSION}, the rank, the experts, the positions as runs
 * of consecutive ones, then the {@link WorkerJob} field by field ({@link RecordSerializer}). A worker of another build may meet a version it
 * cannot read: it still learns the version and its rank, and refuses the job saying so ({@link #readableJob}).
 */
public record Assignment(int version, int rank, ExpertShard experts, int[] positions, WorkerJob job)
        implements ControlMessage {

    /** The layout of {@link WorkerJob} on the wire; one more whenever a field of the spec changes. */
    public static final int VERSION = 14;

    static final RecordSerializer<WorkerJob> JOB = new RecordSerializer<>(WorkerJob.class);

    /** What a communicator that sends or receives assignments adds to its codec. */
    public static final List<ControlType<?>> CONTROL_TYPES = List.of(
            new ControlType<>(ControlCodec.FIRST_EXTENSION_ID, Assignment.class, new Wire()));

    /** Rank {@code rank}'s assignment, its experts and positions planned from the job's mesh. */
    public Assignment(int rank, WorkerJob job) {
        this(VERSION, rank, expertsOf(rank, job), Parallelize.sequencePositions(job.spec().mesh().toMesh(), rank,
                job.spec().mesh().spMode(), job.train().seqLen()), job);
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

    @Override
    public int[] positions() {
        return positions == null ? null : positions.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Assignment a && version == a.version && rank == a.rank
                && java.util.Objects.equals(experts, a.experts) && java.util.Arrays.equals(positions, a.positions)
                && java.util.Objects.equals(job, a.job);
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(version, rank, experts, java.util.Arrays.hashCode(positions), job);
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
            writeRuns(out, m.positions);
            JOB.write(kryo, out, m.job);
        }

        @Override
        public Assignment read(Kryo kryo, Input in, Class<? extends Assignment> type) {
            int version = in.readVarInt(true);
            int rank = in.readInt();
            if (version != VERSION) {
                in.setPosition(in.limit()); // the rest is another build's layout; readableJob() says so
                return new Assignment(version, rank, null, null, null);
            }
            ExpertShard experts = new ExpertShard(in.readVarInt(true), in.readVarInt(true));
            int[] positions = readRuns(in);
            return new Assignment(version, rank, experts, positions, JOB.read(kryo, in, WorkerJob.class));
        }

        /** Ascending positions as (first, length) runs: one or two runs, however long the sequence. */
        private static void writeRuns(Output out, int[] positions) {
            int runs = 0;
            for (int t = 0; t < positions.length; t++) {
                runs += t == 0 || positions[t] != positions[t - 1] + 1 ? 1 : 0;
            }
            out.writeVarInt(runs, true);
            for (int t = 0; t < positions.length; ) {
                int end = t + 1;
                while (end < positions.length && positions[end] == positions[end - 1] + 1) {
                    end++;
                }
                out.writeVarInt(positions[t], true);
                out.writeVarInt(end - t, true);
                t = end;
            }
        }

        private static int[] readRuns(Input in) {
            int runs = in.readVarInt(true);
            int[] first = new int[runs];
            int[] length = new int[runs];
            int total = 0;
            for (int r = 0; r < runs; r++) {
                first[r] = in.readVarInt(true);
                length[r] = in.readVarInt(true);
                total = Math.addExact(total, length[r]);
            }
            int[] positions = new int[total];
            int at = 0;
            for (int r = 0; r < runs; r++) {
                for (int i = 0; i < length[r]; i++) {
                    positions[at++] = first[r] + i;
                }
            }
            return positions;
        }
    }
}
