package dev.tessera.comm;

import org.agrona.UnsafeApi;

/**
 * A collective on {@link SymmetricMemory}: a few phases of local work that read the other members' memory
 * directly, separated by barriers on the members' counters. The entry barrier says every member's input is
 * ready and lets each check that the others called the same operation on the same place; the barrier after a
 * phase says what it wrote may be read; the last one also says nobody reads this member's memory any more, so
 * the caller may change it as soon as the operation returns.
 *
 * <p>All-reduce is a reduce-scatter phase (member {@code j} sums segment {@code j} of every member, in rank
 * order, into its own) and an all-gather phase (each member copies the other segments from their owners): each
 * byte is read once per member and written once, against two copies and a reduce per ring step through
 * Aeron. Segments are the ring's, and the sum order is fixed, so results are bit-identical on every member and
 * from run to run (though not the ring's bits: the ring starts each segment's sum at another member).
 *
 * <p>Operations on one memory run one after another in issue order ({@link SymmetricMemory#reserve}), even
 * when issued from different threads.
 */
final class SymmetricCollective extends Collective {

    /** Local work of one phase; may read every member's memory. */
    interface Phase {
        void run();
    }

    private final SymmetricMemory memory;
    private final long code;
    private final long offset;
    private final long length;
    private final long[] blockOffsets;
    private final boolean samePlace;
    private final Phase[] phases;
    private final long ticket;
    private final long firstCounter;
    private int barrier; // 0: waiting for its turn; k >= 1: waiting for every member to pass barrier k
    private int missingPeer = -1; // a member whose staging block is not there yet

    private SymmetricCollective(ProcessGroup group, String operation, SymmetricMemory memory, Region region,
                                long code, long[] blockOffsets, boolean samePlace, Phase... phases) {
        super(group, operation);
        this.memory = memory;
        this.code = code;
        this.offset = region.address() - memory.address();
        this.length = region.length();
        this.blockOffsets = blockOffsets;
        this.samePlace = samePlace;
        this.phases = phases;
        long[] place = memory.reserve(phases.length + 1);
        this.ticket = place[0];
        this.firstCounter = place[1];
    }

    // ---------------------------------------------------------------- the operations

    static Collective allReduce(ProcessGroup g, SymmetricMemory m, Region buffer, DType dtype, ReduceOp op) {
        long[] bounds = evenBounds(buffer.length(), dtype, g.size());
        return new SymmetricCollective(g, "all-reduce", m, buffer, code(1, dtype, op, 0), null, true,
                () -> reduceOwnSegment(m, buffer, bounds, dtype, op),
                () -> gatherSegments(m, buffer, buffer, bounds));
    }

    /**
     * All-reduce of an ordinary buffer through the group's staging area, chunk by chunk: each member copies a
     * chunk into its staging slot, reduces its segment of that chunk across every member's slot, and copies the
     * reduced segments back out while the next chunk goes in (two slots alternate). A chunk is a megabyte, so the
     * slots stay in cache and main memory sees each byte of the buffer read once and written once per member,
     * against two copies through Aeron's term buffers and a reduce per ring step.
     */
    static Collective stagedAllReduce(ProcessGroup g, SymmetricMemory staging, Region buffer, DType dtype,
                                      ReduceOp op) {
        long slot = staging.bytes() / 2;
        int chunks = (int) Math.max(1, (buffer.length() + slot - 1) / slot);
        Phase[] copyIn = new Phase[chunks];
        Phase[] reduce = new Phase[chunks];
        Phase[] gather = new Phase[chunks];
        for (int c = 0; c < chunks; c++) {
            Region chunk = buffer.slice(c * slot, Math.min(slot, buffer.length() - c * slot));
            Region inSlot = new Region(null, staging.address() + (c % 2) * slot, chunk.length());
            long[] bounds = evenBounds(chunk.length(), dtype, g.size());
            copyIn[c] = () -> chunk.copyTo(inSlot);
            reduce[c] = () -> reduceOwnSegment(staging, inSlot, bounds, dtype, op);
            gather[c] = () -> gatherSegments(staging, inSlot, chunk, bounds);
        }
        // Chunk c goes into slot c % 2 while chunk c - 1 comes out of the other; a slot is rewritten only
        // after the barrier that follows everyone's copying out of it.
        Phase[] phases = new Phase[2 * chunks + 1];
        phases[0] = copyIn[0];
        phases[1] = reduce[0];
        for (int c = 1; c < chunks; c++) {
            Phase out = gather[c - 1];
            Phase in = copyIn[c];
            phases[2 * c] = () -> {
                out.run();
                in.run();
            };
            phases[2 * c + 1] = reduce[c];
        }
        phases[2 * chunks] = gather[chunks - 1];
        Region described = new Region(null, staging.address(), buffer.length());
        return new SymmetricCollective(g, "all-reduce", staging, described, code(8, dtype, op, 0), null, true,
                phases);
    }

    /** ZeRO's in-place reduce-scatter: member j ends with segment j ({@code bounds}: bytes within {@code span}). */
    static Collective reduceScatterInPlace(ProcessGroup g, SymmetricMemory m, Region span, long[] bounds, DType dtype,
                                           ReduceOp op) {
        return new SymmetricCollective(g, "reduce-scatter", m, span, code(2, dtype, op, 0), null, true,
                () -> reduceOwnSegment(m, span, bounds, dtype, op));
    }

    static Collective allGatherInPlace(ProcessGroup g, SymmetricMemory m, Region span, long[] bounds, DType dtype) {
        return new SymmetricCollective(g, "all-gather", m, span, code(3, dtype, ReduceOp.SUM, 0), null, true,
                () -> gatherSegments(m, span, span, bounds));
    }

    /** Block {@code rank} of every member's {@code input} (in symmetric memory), reduced into {@code output}. */
    static Collective reduceScatter(ProcessGroup g, SymmetricMemory m, Region input, Region output, DType dtype,
                                    ReduceOp op) {
        int me = g.rank();
        return new SymmetricCollective(g, "reduce-scatter", m, input, code(4, dtype, op, 0), null, true, () -> {
            long[] sources = new long[g.size()];
            for (int p = 0; p < sources.length; p++) {
                sources[p] = m.peerAddress(p, input.address() + output.length() * me);
            }
            Reducer.reduceAll(dtype, reduction(op), sources, output.base(), output.address(), output.length());
            if (op == ReduceOp.AVG) {
                Reducer.divide(dtype, output.base(), output.address(), output.length(), g.size());
            }
        });
    }

    /** Every member's {@code input} (in symmetric memory) into block {@code p} of {@code output}. */
    static Collective allGather(ProcessGroup g, SymmetricMemory m, Region input, Region output, DType dtype) {
        return new SymmetricCollective(g, "all-gather", m, input, code(5, dtype, ReduceOp.SUM, 0), null, true, () -> {
            for (int p = 0; p < g.size(); p++) {
                if (p != g.rank()) {
                    UnsafeApi.copyMemory(null, m.peerAddress(p, input.address()), output.base(),
                            output.address() + input.length() * p, input.length());
                }
            }
        });
    }

    /**
     * Block {@code rank} of member {@code p}'s {@code input} (in symmetric memory) into block {@code p} of
     * {@code output}; {@code in} and {@code out} are byte offsets of the N blocks. The members publish where their
     * blocks start in their memory, so uneven splits need no extra exchange, and each member's input may start at
     * its own place (expert parallelism sends a chunk whose place depends on how many rows went before it).
     */
    static Collective allToAll(ProcessGroup g, SymmetricMemory m, Region input, long[] in, Region output, long[] out,
                               DType dtype) {
        int me = g.rank();
        long[] placed = new long[in.length];
        for (int j = 0; j < in.length; j++) {
            placed[j] = input.address() - m.address() + in[j];
        }
        return new SymmetricCollective(g, "all-to-all", m, input, code(6, dtype, ReduceOp.SUM, 0), placed, false,
                () -> {
                    for (int p = 0; p < g.size(); p++) {
                        long from = p == me ? placed[me] : m.offsetOf(p, me);
                        long bytes = (p == me ? placed[me + 1] : m.offsetOf(p, me + 1)) - from;
                        if (bytes != out[p + 1] - out[p]) {
                            throw new CommException("all-to-all on group '" + g.name() + "': rank " + g.globalRank(p)
                                    + " sends " + bytes + " bytes to rank " + g.globalRank(me) + ", which expects "
                                    + (out[p + 1] - out[p]), g.globalRank(p));
                        }
                        UnsafeApi.copyMemory(null, m.peerAddress(p, m.address()) + from, output.base(),
                                output.address() + out[p], bytes);
                    }
                });
    }

    static Collective broadcast(ProcessGroup g, SymmetricMemory m, Region buffer, int root) {
        return new SymmetricCollective(g, "broadcast", m, buffer, code(7, DType.BYTE, ReduceOp.SUM, root), null,
                true, () -> {
                    if (g.rank() != root) {
                        UnsafeApi.copyMemory(m.peerAddress(root, buffer.address()), buffer.address(), buffer.length());
                    }
                });
    }

    private static void reduceOwnSegment(SymmetricMemory m, Region span, long[] bounds, DType dtype, ReduceOp op) {
        int me = m.group().rank();
        long at = span.address() + bounds[me];
        long bytes = bounds[me + 1] - bounds[me];
        long[] sources = new long[bounds.length - 1];
        for (int p = 0; p < sources.length; p++) {
            sources[p] = m.peerAddress(p, at);
        }
        Reducer.reduceAll(dtype, reduction(op), sources, null, at, bytes);
        if (op == ReduceOp.AVG) {
            Reducer.divide(dtype, null, at, bytes, sources.length);
        }
    }

    /**
     * Segment {@code p} of member {@code p}'s {@code from} (in {@code m}) into segment {@code p} of {@code to},
     * for every member; {@code to} may be on-heap, and this member's own segment is skipped when in place.
     */
    private static void gatherSegments(SymmetricMemory m, Region from, Region to, long[] bounds) {
        boolean inPlace = to.base() == null && to.address() == from.address();
        for (int p = 0; p < bounds.length - 1; p++) {
            long bytes = bounds[p + 1] - bounds[p];
            if (bytes > 0 && !(inPlace && p == m.group().rank())) {
                UnsafeApi.copyMemory(null, m.peerAddress(p, from.address() + bounds[p]), to.base(),
                        to.address() + bounds[p], bytes);
            }
        }
    }

    /** The ring's even cut: segment j is elements {@code [E j / N, E (j+1) / N)}, in bytes. */
    static long[] evenBounds(long bytes, DType dtype, int n) {
        long elements = bytes / dtype.size();
        long[] bounds = new long[n + 1];
        for (int j = 0; j <= n; j++) {
            bounds[j] = elements * j / n * dtype.size();
        }
        return bounds;
    }

    private static ReduceOp reduction(ReduceOp op) {
        return op == ReduceOp.AVG ? ReduceOp.SUM : op;
    }

    private static final String[] KINDS = {"?", "all-reduce", "in-place reduce-scatter", "in-place all-gather",
        "reduce-scatter", "all-gather", "all-to-all", "broadcast", "staged all-reduce"};

    private static String described(long code, long offset, long length) {
        int kind = (int) (code >>> 16) & 0xff;
        int dtype = (int) (code >>> 8) & 0xff;
        int op = (int) code & 0xff;
        return (kind < KINDS.length ? KINDS[kind] : "operation " + kind) + " ("
                + (dtype < DType.values().length ? DType.values()[dtype] : "dtype " + dtype) + ", "
                + (op < ReduceOp.values().length ? ReduceOp.values()[op] : "op " + op) + ", root " + (code >>> 24)
                + ") on " + length + " bytes at offset " + offset + " of its symmetric memory";
    }

    private static long code(int kind, DType dtype, ReduceOp op, int root) {
        return ((long) root << 24) | ((long) kind << 16) | ((long) dtype.ordinal() << 8) | op.ordinal();
    }

    // ---------------------------------------------------------------- the protocol

    @Override
    void start() {
    }

    @Override
    int progress() {
        if (barrier == 0) {
            if (!memory.isTurnOf(ticket)) {
                return 0;
            }
            missingPeer = memory.mapPeers();
            if (missingPeer >= 0) {
                return 0;
            }
            memory.describe(code, offset, length, blockOffsets);
            memory.arrive(firstCounter + 1);
            barrier = 1;
        }
        int work = 0;
        while (barrier <= phases.length && lagging() < 0) {
            if (barrier == 1) {
                checkDescriptors();
                memory.unlinkOwnFile(); // every peer has mapped this member's block by now
            }
            phases[barrier - 1].run();
            barrier++;
            memory.arrive(firstCounter + barrier);
            work++;
        }
        if (barrier == phases.length + 1 && lagging() < 0) {
            barrier++;
            memory.endTurn(ticket);
            work++;
        }
        return work;
    }

    /** The first member that has not passed the current barrier, or -1. */
    private int lagging() {
        for (int p = 0; p < group.size(); p++) {
            if (p != group.rank() && memory.counterOf(p) < firstCounter + barrier) {
                return p;
            }
        }
        return -1;
    }

    private void checkDescriptors() {
        for (int p = 0; p < group.size(); p++) {
            if (p == group.rank()) {
                continue;
            }
            long theirCode = memory.descriptorOf(p, 0);
            long theirOffset = memory.descriptorOf(p, 1);
            long theirLength = memory.descriptorOf(p, 2);
            if (theirCode != code || (samePlace && (theirOffset != offset || theirLength != length))) {
                throw new CommException(this + ": rank " + group.globalRank(p) + " called "
                        + described(theirCode, theirOffset, theirLength) + ", this rank "
                        + described(code, offset, length) + "; every member must call the same collective"
                        + (samePlace ? " on a buffer at the same place" : ""), group.globalRank(p));
            }
        }
    }

    @Override
    boolean done() {
        return barrier > phases.length + 1;
    }

    @Override
    int blockingPeer() {
        int p = barrier == 0 ? missingPeer : lagging();
        return p < 0 ? -1 : group.globalRank(p);
    }

    @Override
    String waitingFor() {
        if (barrier == 0) {
            return missingPeer >= 0 ? "rank " + group.globalRank(missingPeer) + " to create its staging block"
                    : "this rank's earlier operations on the same symmetric memory";
        }
        int p = lagging();
        return p < 0 ? "nothing" : "rank " + group.globalRank(p) + " to reach barrier " + barrier + " of "
                + (phases.length + 1) + " (it is at " + (memory.counterOf(p) - firstCounter) + ")";
    }
}
