package dev.tessera.worker.parallel;

/**
 * The device mesh of DESIGN.md: {@code W = dp x sp} ranks, rank {@code r} at coordinates {@code (d, s)} with
 * {@code s} varying fastest (so a sequence-parallel group is a run of neighbouring ranks), and expert groups of
 * {@code ep} consecutive ranks, each holding all experts, {@code n_experts / ep} per rank.
 */
public record Mesh(int dp, int sp, int ep) {

    /** A rank's place in the mesh. */
    public record Coords(int d, int s) {
    }

    /** A half-open range {@code [start, end)} of sequences, tokens or experts. */
    public record Range(int start, int end) {
        public int size() {
            return end - start;
        }
    }

    public static final Mesh SINGLE = new Mesh(1, 1, 1);

    public Mesh {
        if (dp < 1 || sp < 1 || ep < 1) {
            throw new IllegalArgumentException("mesh dimensions must be >= 1, got dp=" + dp + " sp=" + sp + " ep=" + ep);
        }
        if ((dp * sp) % ep != 0) {
            throw new IllegalArgumentException("ep=" + ep + " must divide the world size " + dp * sp);
        }
    }

    public int world() {
        return dp * sp;
    }

    public Coords coords(int rank) {
        checkRank(rank);
        return new Coords(rank / sp, rank % sp);
    }

    public int rank(int d, int s) {
        if (d < 0 || d >= dp || s < 0 || s >= sp) {
            throw new IllegalArgumentException("coordinates (" + d + ", " + s + ") outside a " + dp + "x" + sp + " mesh");
        }
        return d * sp + s;
    }

    /** The ranks that hold the same sequence segment: {@code rank}'s data-parallel group. */
    public int[] dataParallelGroup(int rank) {
        int s = coords(rank).s();
        int[] ranks = new int[dp];
        for (int d = 0; d < dp; d++) {
            ranks[d] = rank(d, s);
        }
        return ranks;
    }

    /** The ranks that split the same sequences into segments: {@code rank}'s sequence-parallel group. */
    public int[] sequenceParallelGroup(int rank) {
        int d = coords(rank).d();
        int[] ranks = new int[sp];
        for (int s = 0; s < sp; s++) {
            ranks[s] = rank(d, s);
        }
        return ranks;
    }

    /** The {@code ep} consecutive ranks that together hold every expert and exchange tokens by all-to-all. */
    public int[] expertGroup(int rank) {
        checkRank(rank);
        int first = rank / ep * ep;
        int[] ranks = new int[ep];
        for (int i = 0; i < ep; i++) {
            ranks[i] = first + i;
        }
        return ranks;
    }

    /** The ranks that own the same experts as {@code rank}: where those experts' gradients are summed. */
    public int[] expertDataParallelGroup(int rank) {
        checkRank(rank);
        int[] ranks = new int[world() / ep];
        for (int i = 0; i < ranks.length; i++) {
            ranks[i] = i * ep + rank % ep;
        }
        return ranks;
    }

    /** The sequences of a global batch of {@code batch} that {@code rank} trains on. */
    public Range batchSlice(int rank, int batch) {
        return evenPart(coords(rank).d(), dp, batch, "batch");
    }

    /** The token positions of each sequence of length {@code seq} that {@code rank} holds. */
    public Range sequenceSegment(int rank, int seq) {
        return evenPart(coords(rank).s(), sp, seq, "sequence length");
    }

    /** The experts {@code rank} owns out of {@code nExperts}. */
    public Range ownedExperts(int rank, int nExperts) {
        return evenPart(rank % ep, ep, nExperts, "expert count");
    }

    private static Range evenPart(int index, int parts, int total, String what) {
        if (total % parts != 0) {
            throw new IllegalArgumentException(what + " " + total + " is not divisible by " + parts);
        }
        int size = total / parts;
        return new Range(index * size, (index + 1) * size);
    }

    private void checkRank(int rank) {
        if (rank < 0 || rank >= world()) {
            throw new IllegalArgumentException("rank " + rank + " outside a world of " + world());
        }
    }
}
