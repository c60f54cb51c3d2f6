package dev.tessera.worker.job;

/**
 * {@code moe:} how expert parallelism moves tokens. {@code all_to_all: hierarchical} exchanges them in two hops,
 * for expert groups that span hosts: first among the ranks of a node, then one message per node pair.
 * {@code ranks_per_node} is the node size: 0 takes the expert group's ranks per host (a group on one host is one
 * node, and then the exchange is the flat one); a divisor of {@code mesh.ep} sets it, as Tutel's local size does
 * (say, the ranks of one socket). {@code overlap} cuts each exchange into a chunk per held expert, so an expert
 * computes while the next one's rows arrive and its results go back while the next computes (FSMoE / Tutel).
 */
public record MoeSection(AllToAllKind allToAll, int ranksPerNode, boolean overlap) {

    public static MoeSection defaults() {
        return new MoeSection(AllToAllKind.FLAT, 0, false);
    }
}
