package dev.tessera.comm;

import org.agrona.BufferUtil;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * All-to-all over a parent group in two hops, as HetuMoE and Tutel's "2DH" do (ALGORITHMS.md 7.5): the W members
 * form P = W / g nodes of g consecutive members (parent rank {@code i} is local index {@code i % g} of node
 * {@code i / g}), and every byte goes first within its node, then across nodes. The result is the flat
 * {@link ProcessGroup#allToAll} one, byte for byte: block {@code j} of the input goes to parent member {@code j},
 * and the output holds the blocks of members {@code 0..W-1} in order. What changes is the message pattern: a
 * member sends {@code P - 1} inter-node messages of about {@code g} blocks each instead of {@code W - 1} of one
 * block, at the price of an intra-node all-to-all and two local copies of its share.
 *
 * <p>Member (n, l) runs:
 * <ol>
 *   <li>Layout transform and intra-node all-to-all: it copies its input into staging grouped by destination local
 *       index (for each {@code l'}: the blocks for (0, l'), (1, l'), ..., (P-1, l')) and exchanges these runs
 *       within its node, so it holds everything its node sends to local index {@code l} on any node, ordered by
 *       source local index, then destination node.</li>
 *   <li>The local permutation, done here rather than after the last hop: it regroups what arrived by destination
 *       node (for each node m: the blocks from (n, 0), ..., (n, g-1)), so each inter-node message is one
 *       contiguous run and the inter-node step lands straight in the caller's output.</li>
 *   <li>Inter-node all-to-all among the P members with local index {@code l}: the run for node m goes to (m, l);
 *       the run from node m lands at output offset of source (m, 0), and its blocks are sources (m, 0..g-1) in
 *       order, which is the flat layout.</li>
 * </ol>
 *
 * <p>Uneven splits: the intra-node step must know what each node-mate sends to local index {@code l}, which only
 * that node-mate knows. So an uneven call first all-gathers the node's g rows of the split matrix (each member's
 * {@code inputSplits}, g x W longs) over the intra-node group; the inter-node step's receive sizes are the
 * caller's own {@code outputSplits}. Nothing but payload crosses nodes. Even calls need no exchange.
 *
 * <p>g == 1 and g == W are the flat operation (one of the hops would be the whole exchange), so they delegate to
 * the parent. Every wait is a sub-group collective and so has the communicator's deadline. Staging memory is
 * kept and grows only when a larger call comes. One caller at a time, like a group's blocking collectives.
 */
public final class HierarchicalAllToAll {

    private final ProcessGroup parent;
    private final int w;
    private final int g;
    private final int p;
    private final int local;
    private final ProcessGroup intra; // null when delegating
    private final ProcessGroup inter; // null when delegating

    /** Elements member (node, l) sends to parent member j, at [l * w + j]: the node's rows of the split matrix. */
    private final long[] nodeSplits;
    private final long[] inputOffsets;
    private final long[] evenOutputSplits;
    private final long[] intraSendSplits;
    private final long[] intraRecvSplits;
    private final long[] interSendSplits;
    private final long[] interRecvSplits;
    /** Byte offset of the run from node-mate l at destination node m in {@link #landing}, at [l * p + m]. */
    private final long[] landingOffsets;
    private final UnsafeBuffer myCounts;
    private final UnsafeBuffer nodeCounts;

    private UnsafeBuffer staging = new UnsafeBuffer(BufferUtil.allocateDirectAligned(64, 64));
    private UnsafeBuffer landing = new UnsafeBuffer(BufferUtil.allocateDirectAligned(64, 64));
    private final UnsafeBuffer stagingView = new UnsafeBuffer(0, 0);
    private final UnsafeBuffer landingView = new UnsafeBuffer(0, 0);

    /**
     * Collective in the sense that every member of {@code parent} must construct it with the same
     * {@code ranksPerNode}: it creates the intra-node and inter-node sub-groups ({@code comm.group}) in that
     * order (none when g is 1 or W). Their names derive from the parent's name and g, so instances on different
     * parents do not collide, and a second instance with the same parent and g shares the first one's groups.
     *
     * @throws IllegalArgumentException when {@code ranksPerNode} is below 1 or does not divide the parent's size
     */
    public HierarchicalAllToAll(Communicator comm, ProcessGroup parent, int ranksPerNode) {
        if (parent.communicator() != comm) {
            throw new IllegalArgumentException("group '" + parent.name() + "' belongs to another communicator");
        }
        this.parent = parent;
        this.w = parent.size();
        if (ranksPerNode < 1 || w % ranksPerNode != 0) {
            throw new IllegalArgumentException("ranksPerNode " + ranksPerNode + " must be >= 1 and divide the "
                    + w + " members of group '" + parent.name() + "'");
        }
        this.g = ranksPerNode;
        this.p = w / g;
        int node = parent.rank() / g;
        this.local = parent.rank() % g;
        if (g == 1 || g == w) {
            this.intra = null;
            this.inter = null;
        } else {
            int[] nodeRanks = new int[g];
            for (int l = 0; l < g; l++) {
                nodeRanks[l] = parent.globalRank(node * g + l);
            }
            int[] peerRanks = new int[p];
            for (int m = 0; m < p; m++) {
                peerRanks[m] = parent.globalRank(m * g + local);
            }
            String prefix = parent.name() + "/a2a2dh-g" + g;
            this.intra = comm.group(prefix + "-node" + node, nodeRanks);
            this.inter = comm.group(prefix + "-local" + local, peerRanks);
        }
        this.nodeSplits = new long[g * w];
        this.inputOffsets = new long[w + 1];
        this.evenOutputSplits = new long[w];
        this.intraSendSplits = new long[g];
        this.intraRecvSplits = new long[g];
        this.interSendSplits = new long[p];
        this.interRecvSplits = new long[p];
        this.landingOffsets = new long[g * p];
        this.myCounts = new UnsafeBuffer(BufferUtil.allocateDirectAligned(8 * w, 64));
        this.nodeCounts = new UnsafeBuffer(BufferUtil.allocateDirectAligned(8 * w * g, 64));
    }

    public ProcessGroup parent() {
        return parent;
    }

    /** g: members per node. */
    public int ranksPerNode() {
        return g;
    }

    /** P: the number of nodes. */
    public int nodes() {
        return p;
    }

    /** As {@link ProcessGroup#allToAll(DirectBuffer, MutableDirectBuffer, DType)}: W equal blocks each way. */
    public void allToAll(DirectBuffer input, MutableDirectBuffer output, DType dtype) {
        if (intra == null) {
            parent.allToAll(input, output, dtype);
            return;
        }
        long inBlock = evenBlock(input, dtype, "input");
        long outBlock = evenBlock(output, dtype, "output");
        Arrays.fill(nodeSplits, inBlock); // every member's input is cut the same way, as in the flat one
        Arrays.fill(evenOutputSplits, outBlock);
        for (int j = 0; j <= w; j++) {
            inputOffsets[j] = inBlock * j;
        }
        exchange(input, output, evenOutputSplits, dtype);
    }

    /**
     * As {@link ProcessGroup#allToAll(DirectBuffer, long[], MutableDirectBuffer, long[], DType)}: sizes in
     * elements, {@code inputSplits[j]} to member j, {@code outputSplits[i]} from member i.
     */
    public void allToAll(DirectBuffer input, long[] inputSplits, MutableDirectBuffer output, long[] outputSplits,
                         DType dtype) {
        if (intra == null) {
            parent.allToAll(input, inputSplits, output, outputSplits, dtype);
            return;
        }
        checkSplits(input, inputSplits, dtype, "input");
        checkSplits(output, outputSplits, dtype, "output");
        for (int j = 0; j < w; j++) {
            inputOffsets[j + 1] = inputOffsets[j] + inputSplits[j];
            myCounts.putLong(8 * j, inputSplits[j], ByteOrder.LITTLE_ENDIAN);
        }
        // The node-mates' rows: what each sends to local index `local` sizes this member's intra-node receives.
        intra.allGather(myCounts, nodeCounts, DType.INT64);
        for (int i = 0; i < g * w; i++) {
            nodeSplits[i] = nodeCounts.getLong(8 * i, ByteOrder.LITTLE_ENDIAN);
        }
        exchange(input, output, outputSplits, dtype);
    }

    /** The three steps, once {@link #nodeSplits} and {@link #inputOffsets} hold this call's sizes (elements). */
    private void exchange(DirectBuffer input, MutableDirectBuffer output, long[] outputSplits, DType dtype) {
        int e = dtype.size();
        long intraSend = 0;
        long intraRecv = 0;
        for (int l = 0; l < g; l++) {
            long send = 0;
            long recv = 0;
            for (int m = 0; m < p; m++) {
                send += split(local, m * g + l);
                recv += split(l, m * g + local);
            }
            intraSendSplits[l] = send;
            intraRecvSplits[l] = recv;
            intraSend += send;
            intraRecv += recv;
        }
        // Staging carries step 1's send and then step 2's, which is as long as step 1's receive.
        staging = ensure(staging, Math.max(intraSend, intraRecv) * e);
        landing = ensure(landing, intraRecv * e);

        // 1. Group the input by destination local index, then exchange within the node.
        int at = 0;
        for (int l = 0; l < g; l++) {
            for (int m = 0; m < p; m++) {
                int j = m * g + l;
                int bytes = (int) (split(local, j) * e);
                staging.putBytes(at, input, (int) (inputOffsets[j] * e), bytes);
                at += bytes;
            }
        }
        stagingView.wrap(staging, 0, (int) (intraSend * e));
        landingView.wrap(landing, 0, (int) (intraRecv * e));
        intra.allToAll(stagingView, intraSendSplits, landingView, intraRecvSplits, dtype);

        // 2. Landing holds runs [source local index][destination node]; regroup them by destination node.
        long offset = 0;
        for (int l = 0; l < g; l++) {
            for (int m = 0; m < p; m++) {
                landingOffsets[l * p + m] = offset;
                offset += split(l, m * g + local) * e;
            }
        }
        at = 0;
        for (int m = 0; m < p; m++) {
            long send = 0;
            for (int l = 0; l < g; l++) {
                long elements = split(l, m * g + local);
                int bytes = (int) (elements * e);
                staging.putBytes(at, landing, (int) landingOffsets[l * p + m], bytes);
                at += bytes;
                send += elements;
            }
            interSendSplits[m] = send;
        }

        // 3. Exchange across nodes; the run from node m is sources (m, 0..g-1) in order, where the flat layout has it.
        for (int m = 0; m < p; m++) {
            long recv = 0;
            for (int l = 0; l < g; l++) {
                recv += outputSplits[m * g + l];
            }
            interRecvSplits[m] = recv;
        }
        stagingView.wrap(staging, 0, (int) (intraRecv * e));
        inter.allToAll(stagingView, interSendSplits, output, interRecvSplits, dtype);
    }

    /** Elements node-mate {@code l} sends to parent member {@code j}. */
    private long split(int l, int j) {
        return nodeSplits[l * w + j];
    }

    /** A buffer of at least {@code bytes}: {@code current}, or a new one of twice its size or more. */
    private UnsafeBuffer ensure(UnsafeBuffer current, long bytes) {
        if (bytes <= current.capacity()) {
            return current;
        }
        if (bytes > Integer.MAX_VALUE - 64) {
            // One operation carries up to 2 GiB; a member gathers its node's share for one local index.
            throw new IllegalArgumentException("hierarchical all-to-all on group '" + parent.name() + "': member "
                    + parent.rank() + " would stage " + bytes + " bytes, over the 2 GiB of one operation");
        }
        int capacity = (int) Math.min(Integer.MAX_VALUE - 64, Math.max(bytes, 2L * current.capacity()));
        return new UnsafeBuffer(BufferUtil.allocateDirectAligned(capacity, 64));
    }

    private long evenBlock(DirectBuffer buffer, DType dtype, String what) {
        checkWhole(buffer, dtype);
        long elements = buffer.capacity() / dtype.size();
        if (elements % w != 0) {
            throw new IllegalArgumentException("all-to-all: " + what + " of " + elements
                    + " elements does not split into " + w + " equal blocks");
        }
        return elements / w;
    }

    private void checkSplits(DirectBuffer buffer, long[] splits, DType dtype, String what) {
        checkWhole(buffer, dtype);
        if (splits.length != w) {
            throw new IllegalArgumentException("all-to-all: " + what + " splits have " + splits.length
                    + " entries for a group of " + w);
        }
        long total = 0;
        for (long s : splits) {
            if (s < 0) {
                throw new IllegalArgumentException("all-to-all: negative " + what + " split " + s);
            }
            total += s;
        }
        if (total * dtype.size() > buffer.capacity()) {
            throw new IllegalArgumentException("all-to-all: " + what + " splits total " + total * dtype.size()
                    + " bytes but the buffer holds " + buffer.capacity());
        }
    }

    private static void checkWhole(DirectBuffer buffer, DType dtype) {
        if (buffer.capacity() % dtype.size() != 0) {
            throw new IllegalArgumentException("all-to-all: buffer of " + buffer.capacity()
                    + " bytes is not a whole number of " + dtype);
        }
    }
}
