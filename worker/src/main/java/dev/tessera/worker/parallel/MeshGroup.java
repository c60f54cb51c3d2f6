package dev.tessera.worker.parallel;

import dev.tessera.comm.Communicator;
import dev.tessera.comm.HierarchicalAllToAll;
import dev.tessera.comm.ProcessGroup;
import java.util.Arrays;
import org.agrona.MutableDirectBuffer;

/**
 * This rank's group along one dimension of the {@link DeviceMesh}: the global ranks it shares the dimension
 * with, in group-rank order, and the process group that carries their collectives. A group of one rank is
 * local: it has no process group at all (no streams, no symmetric memory), its barrier and broadcast return at
 * once, and the strategies that {@link Parallelize} installs for it are the local ones.
 */
public final class MeshGroup {

    private final String name;
    private final int[] ranks;
    private final int rank;
    private final Communicator comm; // null when local
    private final ProcessGroup process;

    private MeshGroup(String name, int[] ranks, int rank, Communicator comm, ProcessGroup process) {
        this.name = name;
        this.ranks = ranks;
        this.rank = rank;
        this.comm = comm;
        this.process = process;
    }

    /** This process alone along the dimension. */
    static MeshGroup local(String name, int globalRank) {
        return new MeshGroup(name, new int[] {globalRank}, 0, null, null);
    }

    /** {@code ranks} (global, in group order) through {@code comm}: local when it is one rank. */
    static MeshGroup of(Communicator comm, String name, int[] ranks) {
        if (ranks.length == 1) {
            return local(name, ranks[0]);
        }
        ProcessGroup process = comm.group(name, ranks);
        return new MeshGroup(name, ranks.clone(), process.rank(), comm, process);
    }

    public String name() {
        return name;
    }

    public int size() {
        return ranks.length;
    }

    /** This process's rank within the group. */
    public int rank() {
        return rank;
    }

    /** The global ranks of the members, in group-rank order. */
    public int[] ranks() {
        return ranks.clone();
    }

    /** One rank: nothing to communicate. */
    public boolean isLocal() {
        return process == null;
    }

    /** The process group of the members; a local group has none. */
    public ProcessGroup process() {
        if (process == null) {
            throw new IllegalStateException("group '" + name + "' is this rank alone and has no process group");
        }
        return process;
    }

    /**
     * Another process group over the same ranks, for collectives of one {@code purpose} that should not queue
     * behind this group's (each group runs its asynchronous operations in issue order). Every member must ask
     * for the same purposes in the same order.
     */
    public ProcessGroup channel(String purpose) {
        process();
        return comm.group(name + "." + purpose, ranks);
    }

    /**
     * How many consecutive members share each host (Tutel's local size), for a group whose members come in equal
     * runs per host; the whole group on one host gives its size.
     *
     * @throws IllegalStateException when the hosts do not cut the group into equal consecutive runs
     */
    public int membersPerHost() {
        if (process == null) {
            return 1;
        }
        int run = 1;
        while (run < ranks.length && comm.hostOf(ranks[run]).equals(comm.hostOf(ranks[0]))) {
            run++;
        }
        boolean even = ranks.length % run == 0;
        for (int i = 1; even && i < ranks.length; i++) {
            // Inside a run a member shares the previous one's host; the first of a run does not.
            even = comm.hostOf(ranks[i]).equals(comm.hostOf(ranks[i - 1])) == (i % run != 0);
        }
        if (!even) {
            String[] hosts = new String[ranks.length];
            for (int i = 0; i < ranks.length; i++) {
                hosts[i] = comm.hostOf(ranks[i]);
            }
            throw new IllegalStateException("group '" + name + "' does not come in equal runs of ranks per host (hosts "
                    + Arrays.toString(hosts) + "), which the hierarchical all-to-all needs; set"
                    + " moe.ranks_per_node, or use moe.all_to_all: flat");
        }
        return run;
    }

    /**
     * The two-hop all-to-all over this group (HetuMoE / Tutel 2DH), with nodes of {@code ranksPerNode} consecutive
     * members. Collective: every member makes it with the same {@code ranksPerNode}.
     */
    public HierarchicalAllToAll hierarchicalAllToAll(int ranksPerNode) {
        return new HierarchicalAllToAll(comm, process(), ranksPerNode);
    }

    /** Returns once every member has entered the barrier. */
    public void barrier() {
        if (process != null) {
            process.barrier();
        }
    }

    /** Copies the buffer of group rank {@code root} into every member's. */
    public void broadcast(MutableDirectBuffer buffer, int root) {
        if (process != null) {
            process.broadcast(buffer, root);
        } else if (root != 0) {
            throw new IllegalArgumentException("broadcast root " + root + " is not in group '" + name + "' of one rank");
        }
    }

    @Override
    public String toString() {
        return name + Arrays.toString(ranks);
    }
}
