package dev.tessera.worker.parallel;

import dev.tessera.comm.Communicator;
import java.util.function.LongSupplier;

/**
 * This rank's view of the {@link Mesh}, with every process group it takes part in, made once (as torchtitan's
 * device mesh): data-parallel (the ranks that hold the same sequence segment and replicate the dense
 * parameters), sequence-parallel, expert-parallel (all-to-all of tokens) and expert-data-parallel (the ranks
 * that own the same experts), plus all workers. A dimension of size 1 is a local {@link MeshGroup} and costs
 * nothing. {@link Parallelize} picks each strategy from these groups.
 */
public final class DeviceMesh {

    private final Mesh mesh;
    private final int rank;
    private final MeshGroup dataParallel;
    private final MeshGroup sequenceParallel;
    private final MeshGroup expertParallel;
    private final MeshGroup expertDataParallel;
    private final MeshGroup workers;
    private final boolean standalone;
    private LongSupplier bytesSent = () -> 0;

    private DeviceMesh(Mesh mesh, int rank, MeshGroup dataParallel, MeshGroup sequenceParallel,
                       MeshGroup expertParallel, MeshGroup expertDataParallel, MeshGroup workers, boolean standalone) {
        this.mesh = mesh;
        this.rank = rank;
        this.dataParallel = dataParallel;
        this.sequenceParallel = sequenceParallel;
        this.expertParallel = expertParallel;
        this.expertDataParallel = expertDataParallel;
        this.workers = workers;
        this.standalone = standalone;
    }

    /** One process training alone: every group is local. */
    public static DeviceMesh single() {
        MeshGroup alone = MeshGroup.local("workers", 0);
        return new DeviceMesh(Mesh.SINGLE, 0, MeshGroup.local("data-parallel", 0),
                MeshGroup.local("sequence-parallel", 0), MeshGroup.local("expert-parallel", 0),
                MeshGroup.local("expert-data-parallel", 0), alone, true);
    }

    /**
     * Rank {@code comm.rank()} of {@code mesh}; the mesh's ranks are the communicator's first {@code mesh.world()}
     * (a coordinator may be one more). Every rank of the mesh must call this, in the same order as its other
     * group creations.
     */
    public static DeviceMesh create(Communicator comm, Mesh mesh) {
        int rank = comm.rank();
        MeshGroup dp = MeshGroup.of(comm, "data-parallel", mesh.dataParallelGroup(rank));
        MeshGroup sp = MeshGroup.of(comm, "sequence-parallel", mesh.sequenceParallelGroup(rank));
        MeshGroup ep = MeshGroup.of(comm, "expert-parallel", mesh.expertGroup(rank));
        MeshGroup edp = MeshGroup.of(comm, "expert-data-parallel", mesh.expertDataParallelGroup(rank));
        int[] all = new int[mesh.world()];
        for (int r = 0; r < all.length; r++) {
            all[r] = r;
        }
        // With dp = W (sp = 1) the data-parallel group is every worker: one group, not two of the same ranks.
        MeshGroup workers = dp.size() == mesh.world() ? dp : MeshGroup.of(comm, "workers", all);
        DeviceMesh device = new DeviceMesh(mesh, rank, dp, sp, ep, edp, workers, false);
        device.bytesSent = comm::dataBytesSent;
        return device;
    }

    /** The data bytes this process has handed to the transport so far (0 alone). */
    public LongSupplier bytesSent() {
        return bytesSent;
    }

    public Mesh mesh() {
        return mesh;
    }

    /** This process's global rank. */
    public int rank() {
        return rank;
    }

    /**
     * Whether this is one process training alone ({@link #single}), which writes its own checkpoints; a worker of a
     * coordinator is not, even in a mesh of one, as the coordinator completes what it stages.
     */
    public boolean isStandalone() {
        return standalone;
    }

    /** The sequences of the global batch this rank trains on. */
    public Mesh.Range batchSlice(int globalBatch) {
        return mesh.batchSlice(rank, globalBatch);
    }

    /** The ranks that hold the same sequence segment: dense gradients and replica statistics are summed here. */
    public MeshGroup dataParallel() {
        return dataParallel;
    }

    /** The ranks that split the same sequences into segments: attention's K/V exchange. */
    public MeshGroup sequenceParallel() {
        return sequenceParallel;
    }

    /** The ranks that together hold every expert: MoE's token all-to-all. */
    public MeshGroup expertParallel() {
        return expertParallel;
    }

    /** The ranks that own the same experts: where those experts' gradients are summed. */
    public MeshGroup expertDataParallel() {
        return expertDataParallel;
    }

    /** Every worker of the job (for leaving together). */
    public MeshGroup workers() {
        return workers;
    }

    @Override
    public String toString() {
        return "rank " + rank + " of " + mesh + ": dp " + dataParallel + ", sp " + sequenceParallel + ", ep "
                + expertParallel + ", expert dp " + expertDataParallel;
    }
}
