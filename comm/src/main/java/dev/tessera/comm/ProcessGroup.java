package dev.tessera.comm;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A subset of ranks with collectives, like a torch.distributed process group. Buffers are Agrona buffers over
 * any memory: an ND4J array's elements without copying (optimizers' {@code NativeMemory.unsafe}, which computes
 * the address), or {@code new UnsafeBuffer(directByteBuffer)}. Sizes are in bytes of the buffer's capacity; one
 * operation carries up to 2 GiB, so a larger flat buffer is reduced or gathered window by window.
 *
 * <p>Every member must issue the group's operations in the same order. Operations on different groups may
 * run at once (from different threads, or via the {@code ...Async} forms, which run on this group's own
 * background thread in issue order). All-reduce uses recursive doubling up to
 * {@link CommConfig#smallAllReduceBytes()} and, above, the pipelined ring, or the symmetric-memory path when the
 * buffer lies in this group's {@link SymmetricMemory} ({@link #allocateSymmetric}); all fix the reduction order,
 * so results are bit-identical on every member and from run to run.
 */
public final class ProcessGroup {

    /**
     * Waiting caller: spin briefly (a small message answers in microseconds), then yield (with more processes
     * than cores the peer we wait for needs this core), then park for at most 50 µs.
     */
    private static final ThreadLocal<IdleStrategy> IDLE = ThreadLocal.withInitial(
            () -> new BackoffIdleStrategy(200, 5_000, 1_000, 50_000));

    /**
     * A group's background thread: its operations overlap the caller's compute, which needs the core more than the
     * operation needs its answer at once. It spins and yields only briefly, then parks for at most 100 µs. The
     * caller's patience above made it a busy loop on a slow link, where fragments arrive every few milliseconds
     * and each one restarted 5,000 yields: 37 s of a core (23 s in the kernel) in 90 synchronous steps at
     * 100 Mbit/s, 4.5 s with this (docs/PERFORMANCE.md, "CO2 at tau 3 meets issue 19's four lines").
     */
    private static IdleStrategy backgroundIdle() {
        return new BackoffIdleStrategy(100, 10, 1_000, 100_000);
    }

    private final Communicator comm;
    private final String name;
    private final int[] ranks;
    private final int id;
    private final int myIndex;
    private final AtomicInteger seq = new AtomicInteger();
    private final AtomicInteger symmetricCount = new AtomicInteger();
    private final int[] sendSeq;
    private final int[] recvSeq;
    private final List<SymmetricMemory> symmetric = new CopyOnWriteArrayList<>();
    /** Large all-reduces of ordinary buffers go through {@link #staging()}: one host, no more members than cores. */
    private final boolean stagesAllReduces;
    private SymmetricMemory staging; // two 1 MiB slots per member, made by the first staged all-reduce
    private static final long STAGING_BYTES = 2L << 20;
    private static final int HOST_CPUS = HostCpus.online();
    private ExecutorService asyncThread;

    ProcessGroup(Communicator comm, String name, int[] ranks) {
        if (ranks.length == 0) {
            throw new IllegalArgumentException("group '" + name + "' has no ranks");
        }
        int[] sorted = ranks.clone();
        Arrays.sort(sorted);
        for (int i = 0; i < sorted.length; i++) {
            if (sorted[i] < 0 || sorted[i] >= comm.worldSize() || (i > 0 && sorted[i] == sorted[i - 1])) {
                throw new IllegalArgumentException("group '" + name + "': ranks " + Arrays.toString(ranks)
                        + " must be distinct ranks of a world of " + comm.worldSize());
            }
        }
        this.comm = comm;
        this.name = name;
        this.ranks = ranks.clone();
        this.id = Arrays.hashCode(name.getBytes(StandardCharsets.UTF_8)) * 31 + Arrays.hashCode(ranks);
        int index = -1;
        for (int i = 0; i < ranks.length; i++) {
            if (ranks[i] == comm.rank()) {
                index = i;
            }
        }
        if (index < 0) {
            throw new IllegalArgumentException("rank " + comm.rank() + " is not a member of group '" + name
                    + "' " + Arrays.toString(ranks));
        }
        this.myIndex = index;
        this.sendSeq = new int[ranks.length];
        this.recvSeq = new int[ranks.length];
        // Staged all-reduces pass a barrier per chunk; with more members than cores each barrier waits for the
        // scheduler, and the ring does better.
        this.stagesAllReduces = ranks.length > 1 && ranks.length <= HOST_CPUS && onOneHost();
    }

    private synchronized SymmetricMemory staging() {
        if (staging == null) {
            staging = SymmetricMemory.staging(this, STAGING_BYTES);
        }
        return staging;
    }

    public String name() {
        return name;
    }

    /** This process's rank within the group. */
    public int rank() {
        return myIndex;
    }

    public int size() {
        return ranks.length;
    }

    /** The global ranks of the members, in group-rank order. */
    public int[] ranks() {
        return ranks.clone();
    }

    public int globalRank(int groupRank) {
        return ranks[groupRank];
    }

    int id() {
        return id;
    }

    Communicator communicator() {
        return comm;
    }

    int nextSeq() {
        return seq.getAndIncrement();
    }

    /** Whether every member shares this host's media driver (IPC), so their memory can be mapped here. */
    boolean onOneHost() {
        for (int r : ranks) {
            if (r != comm.rank() && !comm.usesIpc(r)) {
                return false;
            }
        }
        return true;
    }

    // ---------------------------------------------------------------- symmetric memory

    /**
     * Collective: {@code bytes} of memory that every member maps (same size on every member, allocated in the
     * same order). Collectives on buffers inside it, at the same offset on every member, read the other
     * members' memory directly instead of copying through Aeron; elsewhere, and when the group spans hosts,
     * they take the usual paths. A collective must find its buffer in symmetric memory on every member or on
     * none (a member that passes other memory waits at the deadline for the others).
     */
    public SymmetricMemory allocateSymmetric(long bytes) {
        SymmetricMemory m = SymmetricMemory.allocate(this, bytes, symmetricCount.getAndIncrement());
        symmetric.add(m);
        return m;
    }

    private SymmetricMemory symmetricHolding(Region region) {
        if (size() == 1) {
            return null;
        }
        for (SymmetricMemory m : symmetric) {
            if (m.contains(region)) {
                return m;
            }
        }
        return null;
    }

    // ---------------------------------------------------------------- collectives

    /** {@code buffer = op(buffer of every member)}, in place. AVG needs a floating-point dtype. */
    public void allReduce(MutableDirectBuffer buffer, DType dtype, ReduceOp op) {
        run(allReduceOf(buffer, dtype, op));
    }

    public CollectiveHandle allReduceAsync(MutableDirectBuffer buffer, DType dtype, ReduceOp op) {
        return submit(allReduceOf(buffer, dtype, op));
    }

    /**
     * Reduces {@code input} (N blocks of {@code output}'s size) over the group and leaves block {@code rank()}
     * of the result in {@code output}. {@code input} is the ring's workspace and is overwritten.
     */
    public void reduceScatter(MutableDirectBuffer input, MutableDirectBuffer output, DType dtype, ReduceOp op) {
        run(reduceScatterOf(input, output, dtype, op));
    }

    public CollectiveHandle reduceScatterAsync(MutableDirectBuffer input, MutableDirectBuffer output, DType dtype,
                                               ReduceOp op) {
        return submit(reduceScatterOf(input, output, dtype, op));
    }

    /** Concatenates every member's {@code input} into {@code output} (N times its size), in rank order. */
    public void allGather(DirectBuffer input, MutableDirectBuffer output, DType dtype) {
        run(allGatherOf(input, output, dtype));
    }

    public CollectiveHandle allGatherAsync(DirectBuffer input, MutableDirectBuffer output, DType dtype) {
        return submit(allGatherOf(input, output, dtype));
    }

    /**
     * ZeRO's reduce-scatter, in place and uneven: member {@code j} owns elements {@code [bounds[j], bounds[j+1])}
     * of {@code buffer} ({@code N + 1} nondecreasing element offsets; a segment may be empty) and ends with that
     * segment reduced over the group. What the other segments hold afterwards is unspecified.
     */
    public CollectiveHandle reduceScatterInPlaceAsync(MutableDirectBuffer buffer, long[] bounds, DType dtype,
                                                      ReduceOp op) {
        return submit(reduceScatterInPlaceOf(buffer, bounds, dtype, op));
    }

    public void reduceScatterInPlace(MutableDirectBuffer buffer, long[] bounds, DType dtype, ReduceOp op) {
        run(reduceScatterInPlaceOf(buffer, bounds, dtype, op));
    }

    /**
     * The inverse, in place: member {@code j} contributes segment {@code [bounds[j], bounds[j+1])} of its
     * {@code buffer} and every member ends with every segment.
     */
    public CollectiveHandle allGatherInPlaceAsync(MutableDirectBuffer buffer, long[] bounds, DType dtype) {
        return submit(allGatherInPlaceOf(buffer, bounds, dtype));
    }

    public void allGatherInPlace(MutableDirectBuffer buffer, long[] bounds, DType dtype) {
        run(allGatherInPlaceOf(buffer, bounds, dtype));
    }

    /** Block {@code j} of {@code input} goes to member {@code j}; equal blocks of a 1/N of each buffer. */
    public void allToAll(DirectBuffer input, MutableDirectBuffer output, DType dtype) {
        run(allToAllOf(input, null, output, null, dtype));
    }

    public CollectiveHandle allToAllAsync(DirectBuffer input, MutableDirectBuffer output, DType dtype) {
        return submit(allToAllOf(input, null, output, null, dtype));
    }

    /**
     * All-to-all with per-member sizes in elements: {@code inputSplits[j]} elements go to member {@code j},
     * {@code outputSplits[i]} arrive from member {@code i} (each side must agree with its peer's split).
     */
    public void allToAll(DirectBuffer input, long[] inputSplits, MutableDirectBuffer output, long[] outputSplits,
                         DType dtype) {
        run(allToAllOf(input, inputSplits, output, outputSplits, dtype));
    }

    public CollectiveHandle allToAllAsync(DirectBuffer input, long[] inputSplits, MutableDirectBuffer output,
                                          long[] outputSplits, DType dtype) {
        return submit(allToAllOf(input, inputSplits, output, outputSplits, dtype));
    }

    /** Copies {@code root}'s buffer into every member's. */
    public void broadcast(MutableDirectBuffer buffer, int root) {
        run(broadcastOf(buffer, root));
    }

    public CollectiveHandle broadcastAsync(MutableDirectBuffer buffer, int root) {
        return submit(broadcastOf(buffer, root));
    }

    /** Returns once every member has entered the barrier. */
    public void barrier() {
        run(new Barrier(this));
    }

    public CollectiveHandle barrierAsync() {
        return submit(new Barrier(this));
    }

    /** Sends the whole buffer to member {@code dst}; returns when it is handed to the transport. */
    public void send(DirectBuffer buffer, int dst) {
        run(pointToPoint(buffer, dst, true));
    }

    /** Receives exactly {@code buffer.capacity()} bytes from member {@code src}. */
    public void recv(MutableDirectBuffer buffer, int src) {
        run(pointToPoint(buffer, src, false));
    }

    public CollectiveHandle sendAsync(DirectBuffer buffer, int dst) {
        return submit(pointToPoint(buffer, dst, true));
    }

    public CollectiveHandle recvAsync(MutableDirectBuffer buffer, int src) {
        return submit(pointToPoint(buffer, src, false));
    }

    // ---------------------------------------------------------------- building

    private Collective allReduceOf(MutableDirectBuffer buffer, DType dtype, ReduceOp op) {
        Region region = checked(buffer, dtype, "all-reduce");
        if (op == ReduceOp.AVG && !dtype.isFloatingPoint()) {
            throw new IllegalArgumentException("all-reduce AVG needs a floating-point dtype, not " + dtype);
        }
        if (region.length() <= comm.config().smallAllReduceBytes() || size() == 1) {
            // Latency: log2 N exchanges through Aeron beat the symmetric path's three barriers, most of all with
            // more processes than cores, where every barrier waits for each member to be scheduled.
            return new RecursiveDoublingAllReduce(this, "all-reduce", region, dtype, op);
        }
        SymmetricMemory shared = symmetricHolding(region);
        if (shared != null) {
            return SymmetricCollective.allReduce(this, shared, region, dtype, op);
        }
        if (stagesAllReduces) {
            return SymmetricCollective.stagedAllReduce(this, staging(), region, dtype, op);
        }
        return new RingCollective(this, "all-reduce", region, dtype, op, 0, 2 * size() - 3);
    }

    private Collective reduceScatterOf(MutableDirectBuffer input, MutableDirectBuffer output, DType dtype,
                                       ReduceOp op) {
        Region in = checked(input, dtype, "reduce-scatter");
        Region out = checked(output, dtype, "reduce-scatter");
        if (in.length() != out.length() * size()) {
            throw new IllegalArgumentException("reduce-scatter: input of " + in.length() + " bytes must be "
                    + size() + " x the output's " + out.length());
        }
        if (op == ReduceOp.AVG && !dtype.isFloatingPoint()) {
            throw new IllegalArgumentException("reduce-scatter AVG needs a floating-point dtype, not " + dtype);
        }
        if (size() == 1) {
            return new LocalCopy(this, "reduce-scatter", in, out);
        }
        SymmetricMemory shared = symmetricHolding(in);
        if (shared != null) {
            return SymmetricCollective.reduceScatter(this, shared, in, out, dtype, op);
        }
        if (in.length() <= comm.config().smallAllReduceBytes()) {
            // Small: latency, not bytes, dominates; all-reduce the workspace in log2 N exchanges, keep a block.
            return new RecursiveDoublingAllReduce(this, "reduce-scatter", in, dtype, op) {
                @Override
                void finish() {
                    super.finish();
                    in.slice(out.length() * rank(), out.length()).copyTo(out);
                }
            };
        }
        return new RingCollective(this, "reduce-scatter", in, dtype, op, 0, size() - 2) {
            @Override
            void finish() {
                super.finish();
                in.slice(out.length() * rank(), out.length()).copyTo(out);
            }
        };
    }

    private Collective allGatherOf(DirectBuffer input, MutableDirectBuffer output, DType dtype) {
        Region in = checked(input, dtype, "all-gather");
        Region out = checked(output, dtype, "all-gather");
        if (out.length() != in.length() * size()) {
            throw new IllegalArgumentException("all-gather: output of " + out.length() + " bytes must be "
                    + size() + " x the input's " + in.length());
        }
        in.copyTo(out.slice(in.length() * rank(), in.length()));
        if (size() == 1) {
            return new LocalCopy(this, "all-gather", in, out);
        }
        SymmetricMemory shared = symmetricHolding(in);
        if (shared != null) {
            return SymmetricCollective.allGather(this, shared, in, out, dtype);
        }
        if (out.length() <= comm.config().smallAllReduceBytes()) {
            // Small: every member sends its block straight to every other one, one hop.
            Region[] send = new Region[size()];
            Region[] receive = new Region[size()];
            for (int p = 0; p < size(); p++) {
                send[p] = p == rank() ? null : in;
                receive[p] = p == rank() ? null : out.slice(in.length() * p, in.length());
            }
            return new AllToAll(this, "all-gather", send, receive);
        }
        return new RingCollective(this, "all-gather", out, dtype, ReduceOp.SUM, size() - 1, 2 * size() - 3);
    }

    private Collective reduceScatterInPlaceOf(MutableDirectBuffer buffer, long[] bounds, DType dtype, ReduceOp op) {
        Region region = checked(buffer, dtype, "reduce-scatter");
        long[] byteBounds = segmentBytes(region, bounds, dtype, "reduce-scatter");
        if (op == ReduceOp.AVG && !dtype.isFloatingPoint()) {
            throw new IllegalArgumentException("reduce-scatter AVG needs a floating-point dtype, not " + dtype);
        }
        Region span = region.slice(byteBounds[0], byteBounds[size()] - byteBounds[0]);
        SymmetricMemory shared = symmetricHolding(span);
        if (shared != null) {
            return SymmetricCollective.reduceScatterInPlace(this, shared, span, relativeTo(byteBounds), dtype, op);
        }
        if (size() == 1 || span.length() <= comm.config().smallAllReduceBytes()) {
            // Small: reducing all of it in log2 N exchanges beats N - 1 ring steps; every segment ends reduced.
            return new RecursiveDoublingAllReduce(this, "reduce-scatter", span, dtype, op);
        }
        return new RingCollective(this, "reduce-scatter", span, dtype, op, 0, size() - 2, relativeTo(byteBounds));
    }

    private Collective allGatherInPlaceOf(MutableDirectBuffer buffer, long[] bounds, DType dtype) {
        Region region = checked(buffer, dtype, "all-gather");
        long[] byteBounds = segmentBytes(region, bounds, dtype, "all-gather");
        if (size() == 1) {
            return new LocalCopy(this, "all-gather", region, region);
        }
        Region span = region.slice(byteBounds[0], byteBounds[size()] - byteBounds[0]);
        SymmetricMemory shared = symmetricHolding(span);
        if (shared != null) {
            return SymmetricCollective.allGatherInPlace(this, shared, span, relativeTo(byteBounds), dtype);
        }
        if (span.length() <= comm.config().smallAllReduceBytes()) {
            Region[] send = new Region[size()];
            Region[] receive = new Region[size()];
            Region mine = region.slice(byteBounds[rank()], byteBounds[rank() + 1] - byteBounds[rank()]);
            for (int p = 0; p < size(); p++) {
                send[p] = p == rank() || mine.length() == 0 ? null : mine;
                long length = byteBounds[p + 1] - byteBounds[p];
                receive[p] = p == rank() || length == 0 ? null : region.slice(byteBounds[p], length);
            }
            return new AllToAll(this, "all-gather", send, receive);
        }
        return new RingCollective(this, "all-gather", span, dtype, ReduceOp.SUM, size() - 1, 2 * size() - 3,
                relativeTo(byteBounds));
    }

    /** Checks {@code N + 1} nondecreasing element offsets inside the buffer and returns them in bytes. */
    private long[] segmentBytes(Region region, long[] bounds, DType dtype, String operation) {
        if (bounds.length != size() + 1) {
            throw new IllegalArgumentException(operation + ": " + bounds.length + " segment bounds for a group of "
                    + size() + "; need " + (size() + 1));
        }
        long[] bytes = new long[bounds.length];
        for (int j = 0; j < bounds.length; j++) {
            if (bounds[j] < 0 || (j > 0 && bounds[j] < bounds[j - 1])) {
                throw new IllegalArgumentException(operation + ": segment bounds must be nondecreasing and >= 0, got "
                        + java.util.Arrays.toString(bounds));
            }
            bytes[j] = bounds[j] * dtype.size();
        }
        if (bytes[size()] > region.length()) {
            throw new IllegalArgumentException(operation + ": segments end at element " + bounds[size()]
                    + " beyond the buffer of " + region.length() / dtype.size());
        }
        return bytes;
    }

    private static long[] relativeTo(long[] byteBounds) {
        long[] relative = new long[byteBounds.length];
        for (int j = 0; j < relative.length; j++) {
            relative[j] = byteBounds[j] - byteBounds[0];
        }
        return relative;
    }

    private Collective allToAllOf(DirectBuffer input, long[] inputSplits, MutableDirectBuffer output,
                                  long[] outputSplits, DType dtype) {
        Region in = checked(input, dtype, "all-to-all");
        Region out = checked(output, dtype, "all-to-all");
        long[] inOffsets = offsets(in, inputSplits, dtype, "input");
        long[] outOffsets = offsets(out, outputSplits, dtype, "output");
        SymmetricMemory shared = symmetricHolding(in);
        if (shared != null) {
            return SymmetricCollective.allToAll(this, shared, in, inOffsets, out, outOffsets, dtype);
        }
        return new AllToAll(this, "all-to-all", AllToAll.blocks(in, inOffsets), AllToAll.blocks(out, outOffsets));
    }

    private long[] offsets(Region r, long[] splits, DType dtype, String what) {
        long[] offsets = new long[size() + 1];
        long elements = r.length() / dtype.size();
        if (splits == null) {
            if (elements % size() != 0) {
                throw new IllegalArgumentException("all-to-all: " + what + " of " + elements
                        + " elements does not split into " + size() + " equal blocks");
            }
            for (int j = 0; j <= size(); j++) {
                offsets[j] = elements / size() * j * dtype.size();
            }
            return offsets;
        }
        if (splits.length != size()) {
            throw new IllegalArgumentException("all-to-all: " + what + " splits have " + splits.length
                    + " entries for a group of " + size());
        }
        for (int j = 0; j < size(); j++) {
            if (splits[j] < 0) {
                throw new IllegalArgumentException("all-to-all: negative " + what + " split " + splits[j]);
            }
            offsets[j + 1] = offsets[j] + splits[j] * dtype.size();
        }
        if (offsets[size()] > r.length()) {
            throw new IllegalArgumentException("all-to-all: " + what + " splits total " + offsets[size()]
                    + " bytes but the buffer holds " + r.length());
        }
        return offsets;
    }

    private Collective broadcastOf(MutableDirectBuffer buffer, int root) {
        if (root < 0 || root >= size()) {
            throw new IllegalArgumentException("broadcast root " + root + " is not in group '" + name + "'");
        }
        Region region = Region.of(buffer);
        SymmetricMemory shared = symmetricHolding(region);
        if (shared != null) {
            return SymmetricCollective.broadcast(this, shared, region, root);
        }
        if (region.length() <= comm.config().smallAllReduceBytes() && size() > 2) {
            // Small: the root sends to everyone directly (one hop) instead of down the pipelined chain.
            Region[] send = new Region[size()];
            Region[] receive = new Region[size()];
            for (int p = 0; p < size(); p++) {
                send[p] = rank() == root && p != root ? region : null;
                receive[p] = rank() != root && p == root ? region : null;
            }
            return new AllToAll(this, "broadcast", send, receive);
        }
        return new Broadcast(this, region, root);
    }

    private Collective pointToPoint(DirectBuffer buffer, int peer, boolean sending) {
        if (peer < 0 || peer >= size() || peer == myIndex) {
            throw new IllegalArgumentException((sending ? "send to " : "recv from ") + peer
                    + ": not another member of group '" + name + "'");
        }
        int s;
        synchronized (this) {
            s = sending ? sendSeq[peer]++ : recvSeq[peer]++;
        }
        return new PointToPoint(this, Region.of(buffer), peer, sending, s);
    }

    private static Region checked(DirectBuffer buffer, DType dtype, String operation) {
        if (buffer.capacity() % dtype.size() != 0) {
            throw new IllegalArgumentException(operation + ": buffer of " + buffer.capacity()
                    + " bytes is not a whole number of " + dtype);
        }
        return Region.of(buffer);
    }

    // ---------------------------------------------------------------- running

    private void run(Collective c) {
        String aborted = comm.abortReason(id);
        if (aborted != null) {
            throw new CommException(c + ": group is unusable, " + aborted, -1);
        }
        c.start();
        for (RecvSlot slot : c.slots) {
            comm.post(slot);
        }
        try {
            drive(c);
            c.finish();
        } catch (CommException e) {
            comm.broadcastAbort(this, e.getMessage());
            throw e;
        } finally {
            for (RecvSlot slot : c.slots) {
                comm.retire(slot);
            }
        }
    }

    private void drive(Collective c) {
        IdleStrategy idle = IDLE.get();
        idle.reset();
        long deadlineMs = comm.config().deadlineMs();
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(deadlineMs);
        while (true) {
            int work = c.progress();
            if (c.done()) {
                return;
            }
            work += comm.pollOnce();
            for (int i = 0, n = c.slots.size(); i < n; i++) {
                String error = c.slots.get(i).error();
                if (error != null) {
                    throw new CommException(c + ": " + error, c.slots.get(i).srcRank);
                }
            }
            if (work == 0) {
                String aborted = comm.abortReason(id);
                if (aborted != null) {
                    throw new CommException(c + ": " + aborted, -1);
                }
                int peer = c.blockingPeer();
                String gone = peer >= 0 ? comm.goneReason(peer) : null;
                if (gone != null && comm.pollOnce() == 0 && !c.done()) {
                    throw new CommException(c + ": peer rank " + peer + " went away: " + gone + "; was waiting for "
                            + c.waitingFor(), peer);
                }
            }
            // Checked even while work is done: frames of other groups keep the loop busy without this one moving.
            if (System.nanoTime() > deadline) {
                int peer = c.blockingPeer();
                throw new CommException(c + ": rank " + peer + " did not answer within " + deadlineMs
                        + " ms; waiting for " + c.waitingFor(), peer);
            }
            idle.idle(work);
        }
    }

    /**
     * Runs {@code work} on this group's background thread, after the operations issued before it and before those
     * issued after: a composite operation (encode, exchange with this group's blocking collectives, decode) that
     * keeps the group's issue order. {@code description} names it in errors.
     */
    public synchronized CollectiveHandle runAsync(String description, Runnable work) {
        CompletableFuture<Void> future = CompletableFuture.runAsync(work, asyncThread());
        return new CollectiveHandle(future, description + " on group '" + name + "'", comm.config().deadlineMs());
    }

    private synchronized ExecutorService asyncThread() {
        if (asyncThread == null) {
            asyncThread = Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(() -> {
                    IDLE.set(backgroundIdle());
                    r.run();
                }, "tessera-comm-" + name);
                t.setDaemon(true);
                return t;
            });
        }
        return asyncThread;
    }

    private synchronized CollectiveHandle submit(Collective c) {
        CompletableFuture<Void> future = CompletableFuture.runAsync(() -> run(c), asyncThread());
        return new CollectiveHandle(future, c.toString(), comm.config().deadlineMs());
    }

    synchronized void shutdownAsync() {
        if (asyncThread != null) {
            asyncThread.shutdownNow();
        }
    }

    /** A one-member group's reduce-scatter or all-gather: just the copy. */
    private static final class LocalCopy extends Collective {
        private final Region from;
        private final Region to;

        LocalCopy(ProcessGroup group, String operation, Region from, Region to) {
            super(group, operation);
            this.from = from;
            this.to = to;
        }

        @Override
        void start() {
            from.copyTo(to);
        }

        @Override
        int progress() {
            return 0;
        }

        @Override
        boolean done() {
            return true;
        }

        @Override
        int blockingPeer() {
            return -1;
        }

        @Override
        String waitingFor() {
            return "nothing";
        }
    }
}
