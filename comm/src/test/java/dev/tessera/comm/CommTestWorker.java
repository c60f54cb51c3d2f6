package dev.tessera.comm;

import org.agrona.concurrent.UnsafeBuffer;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * A worker process of the comm tests: {@code <scenario> <rank> <world> <aeronDir> <jobId> <transport>
 * <deadlineMs> <smallAllReduceBytes> <udpBasePort>}, token from {@value CommConfig#TOKEN_ENV}. Checks every result element
 * by element against a reference computed here from the same deterministic inputs, prints {@code RESULT OK}
 * and exits 0; on a failure prints it and exits 1 (assertion) or 3 ({@link CommException}).
 */
public final class CommTestWorker {

    static final int[] SIZES = {0, 1, 7, 16_000, 20_000, 1_000_003};

    private final Communicator comm;
    private final int rank;
    private final int n;
    private final boolean symmetric;
    private final Arena arena;

    private CommTestWorker(Communicator comm, boolean symmetric, long arenaBytes) {
        this.comm = comm;
        this.rank = comm.rank();
        this.n = comm.worldSize();
        this.symmetric = symmetric;
        this.arena = new Arena(comm.world(), symmetric, arenaBytes);
    }

    public static void main(String[] args) {
        // "<scenario>-symmetric": the same checks on buffers in symmetric memory (the shared-memory paths).
        boolean symmetric = args[0].endsWith("-symmetric");
        String scenario = args[0].replace("-symmetric", "");
        int rank = Integer.parseInt(args[1]);
        int world = Integer.parseInt(args[2]);
        CommConfig config = CommConfig.defaults(args[4], CommConfig.tokenFromEnvironment())
                .withDriver(DriverMode.SHARED_PER_HOST, args[3])
                .withTransport(Transport.valueOf(args[5]))
                .withDeadlineMs(Long.parseLong(args[6]))
                .withSmallAllReduceBytes(Integer.parseInt(args[7]));
        int code;
        try (Communicator comm = Communicator.connect(config, StaticPeerDirectory.localhost(world, Integer.parseInt(args[8])), rank)) {
            System.out.println("CONNECTED rank " + rank);
            if (scenario.equals("fallback") && rank == 1) {
                // A directory where rank 1's block file goes: its allocation fails as on a full /dev/shm.
                Files.createDirectories(Path.of(args[3], "symmetric", Integer.toHexString(comm.world().id()) + "-0-1"));
            }
            long arenaBytes = scenario.equals("big") ? 256L << 20 : scenario.equals("collectives") ? 80L << 20 : 8L << 20;
            CommTestWorker w = new CommTestWorker(comm, symmetric, arenaBytes);
            switch (scenario) {
                case "collectives" -> w.collectives();
                case "big" -> w.big();
                case "groups" -> w.groups();
                case "kill" -> w.killLoop();
                case "mismatch" -> w.mismatchedPlaces();
                case "fallback" -> w.fallBackTogether();
                case "connect" -> { }
                default -> throw new IllegalArgumentException("scenario " + scenario);
            }
            comm.world().barrier();
            System.out.println("RESULT OK dropped=" + comm.droppedFrames());
            code = 0;
        } catch (CommException e) {
            System.out.println("ERROR " + e.getMessage());
            code = 3;
        } catch (Throwable e) {
            System.out.println("FAIL " + e);
            e.printStackTrace(System.out);
            code = 1;
        }
        System.out.flush();
        System.exit(code);
    }

    // ------------------------------------------------------------------ inputs and checks

    /** Small integers: sums over up to 4 ranks are exact in every dtype, so any order gives the same bits. */
    static long value(int rank, long i) {
        return ((rank * 7919L + i * 31L) % 2001L) - 1000L;
    }

    static UnsafeBuffer buffer(long elements, DType t) {
        return new UnsafeBuffer(ByteBuffer.allocateDirect((int) (elements * t.size())));
    }

    static void put(UnsafeBuffer b, DType t, long i, double v) {
        int at = (int) (i * t.size());
        switch (t) {
            case FLOAT32 -> b.putFloat(at, (float) v);
            case FLOAT64 -> b.putDouble(at, v);
            case INT32 -> b.putInt(at, (int) v);
            case INT64 -> b.putLong(at, (long) v);
            case BYTE -> b.putByte(at, (byte) v);
        }
    }

    static double get(UnsafeBuffer b, DType t, long i) {
        int at = (int) (i * t.size());
        return switch (t) {
            case FLOAT32 -> b.getFloat(at);
            case FLOAT64 -> b.getDouble(at);
            case INT32 -> b.getInt(at);
            case INT64 -> b.getLong(at);
            case BYTE -> b.getByte(at);
        };
    }

    /** The reduction of element i over ranks 0..n-1, in that order, rounded like the dtype. */
    static double reference(int n, long i, DType t, ReduceOp op) {
        double acc = value(0, i);
        for (int r = 1; r < n; r++) {
            acc = op == ReduceOp.MAX ? Math.max(acc, value(r, i)) : acc + value(r, i);
        }
        if (op == ReduceOp.AVG) {
            return t == DType.FLOAT32 ? (double) ((float) acc / (float) n) : acc / n;
        }
        return acc;
    }

    static void check(String what, UnsafeBuffer actual, DType t, long elements, java.util.function.LongToDoubleFunction expected) {
        for (long i = 0; i < elements; i++) {
            double e = expected.applyAsDouble(i);
            double a = get(actual, t, i);
            if (Double.doubleToLongBits(a) != Double.doubleToLongBits(t == DType.FLOAT32 ? (double) (float) e : e)) {
                throw new AssertionError(what + ": element " + i + " is " + a + ", expected " + e);
            }
        }
    }

    /**
     * Where a scenario's buffers come from: plain direct memory, or a bump allocator over the group's symmetric
     * memory, reset before each collective so every member's first buffer (the input) is at the same offset.
     */
    static final class Arena {
        private final SymmetricMemory memory;
        private long used;

        Arena(ProcessGroup group, boolean symmetric, long bytes) {
            this.memory = symmetric ? group.allocateSymmetric(bytes) : null;
        }

        Arena reset() {
            used = 0;
            return this;
        }

        UnsafeBuffer buffer(long elements, DType t) {
            if (memory == null) {
                return CommTestWorker.buffer(elements, t);
            }
            long bytes = elements * t.size();
            if (used + bytes > memory.bytes()) {
                throw new IllegalStateException("test arena of " + memory.bytes() + " bytes is full");
            }
            UnsafeBuffer b = new UnsafeBuffer(memory.buffer(), (int) used, (int) bytes);
            b.setMemory(0, (int) bytes, (byte) 0);
            used += (bytes + 63) & ~63L;
            return b;
        }

        UnsafeBuffer inputs(int rank, long elements, DType t, long indexBase) {
            UnsafeBuffer b = buffer(elements, t);
            for (long i = 0; i < elements; i++) {
                put(b, t, i, value(rank, indexBase + i));
            }
            return b;
        }
    }

    // ------------------------------------------------------------------ scenarios

    void collectives() {
        ProcessGroup world = comm.world();
        for (int size : SIZES) {
            boolean large = size > 100_000;
            for (DType t : large ? new DType[] {DType.FLOAT32, DType.INT64} : new DType[] {DType.FLOAT32,
                    DType.FLOAT64, DType.INT32, DType.INT64}) {
                for (ReduceOp op : ReduceOp.values()) {
                    if (op == ReduceOp.AVG && !t.isFloatingPoint() || large && op == ReduceOp.MAX) {
                        continue;
                    }
                    UnsafeBuffer b = arena.reset().inputs(rank, size, t, 0);
                    world.allReduce(b, t, op);
                    check("all-reduce " + op + " " + t + " x" + size, b, t, size, i -> reference(n, i, t, op));
                }
                reduceScatter(world, size, t);
                allGather(world, size, t);
                allToAll(world, size, t);
                broadcast(world, size, t);
            }
            sendRecv(world, size);
            world.barrier();
            System.out.println("OK size " + size);
        }
        unevenAllToAll(world);
        shardedInPlace(world, 37);
        shardedInPlace(world, 600_011);
        determinism(world, 1000);
        determinism(world, 1_000_003);
        asyncOverlap(world);
        if (!symmetric) {
            heapAllReduce(world);
        } else {
            heapOutputs(world);
        }
    }

    /** Inputs in symmetric memory, outputs over Java arrays: the collectives write on-heap memory correctly. */
    private void heapOutputs(ProcessGroup g) {
        DType t = DType.FLOAT32;
        int count = 50_001;
        UnsafeBuffer in = arena.reset().inputs(rank, (long) count * n, t, 0);
        UnsafeBuffer out = new UnsafeBuffer(new byte[count * 4]);
        g.reduceScatter(in, out, t, ReduceOp.AVG);
        check("reduce-scatter into a Java array", out, t, count,
                i -> reference(n, (long) rank * count + i, t, ReduceOp.AVG));
        UnsafeBuffer mine = arena.reset().inputs(rank, count, t, 0);
        UnsafeBuffer all = new UnsafeBuffer(new byte[count * n * 4]);
        g.allGather(mine, all, t);
        check("all-gather into a Java array", all, t, (long) count * n, i -> value((int) (i / count), i % count));
        UnsafeBuffer blocks = arena.reset().inputs(rank, (long) count * n, t, 0);
        UnsafeBuffer received = new UnsafeBuffer(new byte[count * n * 4]);
        g.allToAll(blocks, received, t);
        check("all-to-all into a Java array", received, t, (long) count * n,
                i -> value((int) (i / count), (long) rank * count + i % count));
        System.out.println("OK on-heap outputs");
    }

    /** A buffer over a Java array (not direct memory), large enough for the staged or ring path. */
    private void heapAllReduce(ProcessGroup g) {
        DType t = DType.FLOAT32;
        int count = 300_001;
        UnsafeBuffer b = new UnsafeBuffer(new byte[count * 4]);
        for (int i = 0; i < count; i++) {
            put(b, t, i, value(rank, i));
        }
        g.allReduce(b, t, ReduceOp.SUM);
        check("all-reduce of an on-heap buffer", b, t, count, i -> reference(n, i, t, ReduceOp.SUM));
        System.out.println("OK on-heap all-reduce");
    }

    private void reduceScatter(ProcessGroup g, int count, DType t) {
        UnsafeBuffer in = arena.reset().inputs(rank, (long) count * n, t, 0);
        UnsafeBuffer out = arena.buffer(count, t);
        g.reduceScatter(in, out, t, ReduceOp.SUM);
        check("reduce-scatter " + t + " x" + count, out, t, count,
                i -> reference(n, (long) rank * count + i, t, ReduceOp.SUM));
    }

    private void allGather(ProcessGroup g, int count, DType t) {
        UnsafeBuffer in = arena.reset().inputs(rank, count, t, 0);
        UnsafeBuffer out = arena.buffer((long) count * n, t);
        g.allGather(in, out, t);
        check("all-gather " + t + " x" + count, out, t, (long) count * n,
                i -> value((int) (i / Math.max(1, count)), i % Math.max(1, count)));
    }

    private void allToAll(ProcessGroup g, int count, DType t) {
        // Element k of the block for member j from member r is value(r, j * count + k).
        UnsafeBuffer in = arena.reset().inputs(rank, (long) count * n, t, 0);
        UnsafeBuffer out = arena.buffer((long) count * n, t);
        g.allToAll(in, out, t);
        check("all-to-all " + t + " x" + count, out, t, (long) count * n,
                i -> value((int) (i / Math.max(1, count)), (long) rank * count + i % Math.max(1, count)));
    }

    private void broadcast(ProcessGroup g, int count, DType t) {
        int root = n - 1;
        UnsafeBuffer b = rank == root ? arena.reset().inputs(root, count, t, 5) : arena.reset().buffer(count, t);
        g.broadcast(b, root);
        check("broadcast " + t + " x" + count, b, t, count, i -> value(root, 5 + i));
    }

    private void sendRecv(ProcessGroup g, int count) {
        DType t = DType.FLOAT32;
        int right = (rank + 1) % n;
        int left = (rank - 1 + n) % n;
        UnsafeBuffer out = arena.reset().inputs(rank, count, t, 11);
        UnsafeBuffer in = arena.buffer(count, t);
        CollectiveHandle h = g.sendAsync(out, right);
        g.recv(in, left);
        h.await();
        check("send/recv x" + count, in, t, count, i -> value(left, 11 + i));
    }

    static long split(int from, int to) {
        return (from * 3L + to * 5L) % 7L + (to == 0 ? 1000 : 0);
    }

    private void unevenAllToAll(ProcessGroup g) {
        DType t = DType.INT32;
        long[] inSplits = new long[n];
        long[] outSplits = new long[n];
        long inTotal = 0;
        long outTotal = 0;
        for (int j = 0; j < n; j++) {
            inSplits[j] = split(rank, j);
            outSplits[j] = split(j, rank);
            inTotal += inSplits[j];
            outTotal += outSplits[j];
        }
        // Block for member j from member r holds value(r, 100000 * j + k). Each member's input starts at its own
        // place in the arena (in symmetric memory: at another offset on every member).
        arena.reset().buffer(16L * rank + 1, t);
        UnsafeBuffer in = arena.buffer(inTotal, t);
        long at = 0;
        for (int j = 0; j < n; j++) {
            for (long k = 0; k < inSplits[j]; k++) {
                put(in, t, at++, value(rank, 100_000L * j + k));
            }
        }
        UnsafeBuffer out = arena.buffer(outTotal, t);
        g.allToAll(in, inSplits, out, outSplits, t);
        long[] expected = new long[(int) outTotal];
        int e = 0;
        for (int i = 0; i < n; i++) {
            for (long k = 0; k < outSplits[i]; k++) {
                expected[e++] = value(i, 100_000L * rank + k);
            }
        }
        check("uneven all-to-all", out, t, outTotal, i -> expected[(int) i]);
        System.out.println("OK uneven all-to-all " + Arrays.toString(inSplits));
    }

    /**
     * ZeRO's in-place pair over uneven shards of a window that starts inside the buffer: member j owns a
     * segment of a size that depends on j (member 1's is empty); reduce-scatter leaves member j's segment summed,
     * all-gather then gives everyone every member's segment.
     */
    private void shardedInPlace(ProcessGroup g, long total) {
        DType t = DType.FLOAT32;
        long[] bounds = new long[n + 1];
        bounds[0] = 5;
        for (int j = 0; j < n; j++) {
            long share = j == 1 ? 0 : total * (j + 1) / (n * (n + 1) / 2);
            bounds[j + 1] = Math.min(5 + total, bounds[j] + share);
        }
        bounds[n] = 5 + total;
        UnsafeBuffer b = arena.reset().inputs(rank, total + 9, t, 0);
        g.reduceScatterInPlace(b, bounds, t, ReduceOp.SUM);
        check("in-place reduce-scatter x" + total, new UnsafeBuffer(b, (int) (bounds[rank] * 4),
                (int) ((bounds[rank + 1] - bounds[rank]) * 4)), t, bounds[rank + 1] - bounds[rank],
                i -> reference(n, bounds[rank] + i, t, ReduceOp.SUM));
        g.allGatherInPlace(b, bounds, t);
        check("in-place all-gather x" + total, new UnsafeBuffer(b, 20, (int) (total * 4)), t, total,
                i -> reference(n, 5 + i, t, ReduceOp.SUM));
        check("in-place collectives leave the buffer's head", b, t, 5, i -> value(rank, i));
        System.out.println("OK sharded in-place " + Arrays.toString(bounds));
    }

    /** Random floats: two runs give the same bits, and every rank holds the same bits. */
    private void determinism(ProcessGroup g, int count) {
        DType t = DType.FLOAT32;
        SplittableRandom random = new SplittableRandom(1234 + rank);
        UnsafeBuffer first = arena.reset().buffer(count, t);
        UnsafeBuffer second = arena.buffer(count, t);
        for (int i = 0; i < count; i++) {
            float v = (float) random.nextGaussian();
            first.putFloat(i * 4, v);
            second.putFloat(i * 4, v);
        }
        g.allReduce(first, t, ReduceOp.SUM);
        g.allReduce(second, t, ReduceOp.SUM);
        long hash = 0;
        for (int i = 0; i < count; i++) {
            int bits = first.getInt(i * 4);
            if (bits != second.getInt(i * 4)) {
                throw new AssertionError("all-reduce of " + count + " random floats differs between runs at " + i);
            }
            hash = hash * 1_000_003L + bits;
        }
        UnsafeBuffer mine = arena.buffer(1, DType.INT64);
        mine.putLong(0, hash);
        UnsafeBuffer all = arena.buffer(n, DType.INT64);
        g.allGather(mine, all, DType.INT64);
        for (int r = 0; r < n; r++) {
            if (all.getLong(r * 8) != hash) {
                throw new AssertionError("all-reduce of " + count + " random floats: rank " + r
                        + " holds other bits than rank " + rank);
            }
        }
        System.out.println("OK deterministic x" + count);
    }

    private void asyncOverlap(ProcessGroup g) {
        DType t = DType.FLOAT32;
        int count = 300_001;
        UnsafeBuffer a = arena.reset().inputs(rank, count, t, 0);
        CollectiveHandle h = g.allReduceAsync(a, t, ReduceOp.SUM);
        double busy = 0;
        for (int i = 0; i < 100_000; i++) {
            busy += Math.sqrt(i); // compute while the all-reduce runs
        }
        h.await();
        check("async all-reduce", a, t, count, i -> reference(n, i, t, ReduceOp.SUM));
        System.out.println("OK async (" + (busy > 0) + ")");
    }

    void big() {
        DType t = DType.FLOAT32;
        long count = (256L << 20) / 4;
        UnsafeBuffer b = arena.buffer(count, t);
        for (long i = 0; i < count; i++) {
            b.putFloat((int) (i * 4), (float) value(rank, i));
        }
        long start = System.nanoTime();
        comm.world().allReduce(b, t, ReduceOp.SUM);
        System.out.printf("256 MB all-reduce took %.1f ms%n", (System.nanoTime() - start) / 1e6);
        check("all-reduce 256 MB", b, t, count, i -> reference(n, i, t, ReduceOp.SUM));
    }

    /** Collectives on two groups at once: one from this thread, one through async handles. */
    void groups() throws Exception {
        int[] all = new int[n];
        int[] reversed = new int[n];
        for (int i = 0; i < n; i++) {
            all[i] = i;
            reversed[i] = n - 1 - i;
        }
        ProcessGroup a = comm.group("a", all);
        ProcessGroup b = comm.group("b", reversed);
        ProcessGroup half = null;
        int[] halfRanks = null;
        if (n == 4) {
            halfRanks = rank % 2 == 0 ? new int[] {0, 2} : new int[] {1, 3};
            half = comm.group(rank % 2 == 0 ? "even" : "odd", halfRanks);
        }
        Arena onA = new Arena(a, symmetric, 4L << 20);
        Arena onB = new Arena(b, symmetric, 4L << 20);
        Arena onHalf = half == null ? null : new Arena(half, symmetric, 4L << 20);
        DType t = DType.FLOAT32;
        for (int iter = 0; iter < 8; iter++) {
            int count = iter % 2 == 0 ? 500_003 : 100;
            UnsafeBuffer x = onA.reset().inputs(rank, count, t, iter);
            UnsafeBuffer y = onB.reset().inputs(rank, count, t, iter + 1);
            UnsafeBuffer z = onHalf == null ? null : onHalf.reset().inputs(rank, count, t, iter + 2);
            CollectiveHandle hx = a.allReduceAsync(x, t, ReduceOp.SUM);
            CollectiveHandle hz = half == null ? null : half.allReduceAsync(z, t, ReduceOp.MAX);
            b.allReduce(y, t, ReduceOp.SUM);
            hx.await();
            final int base = iter;
            check("group a", x, t, count, i -> reference(n, base + i, t, ReduceOp.SUM));
            check("group b", y, t, count, i -> reference(n, base + 1 + i, t, ReduceOp.SUM));
            if (hz != null) {
                hz.await();
                int[] members = halfRanks;
                check("group " + half.name(), z, t, count,
                        i -> Math.max(value(members[0], base + 2 + i), value(members[1], base + 2 + i)));
            }
        }
        System.out.println("OK groups");
    }

    /** Rank 1 passes a buffer 64 bytes further into its symmetric memory than the others: all must refuse. */
    void mismatchedPlaces() {
        DType t = DType.FLOAT32;
        UnsafeBuffer b = arena.reset().buffer(100_000, t); // above the small all-reduce size: the symmetric path
        UnsafeBuffer shifted = new UnsafeBuffer(b, rank == 1 ? 64 : 0, 320_000);
        comm.world().allReduce(shifted, t, ReduceOp.SUM);
    }

    /** Rank 1 cannot create its block: every member falls back to local memory, and collectives still work. */
    void fallBackTogether() {
        if (arena.memory.isShared()) {
            throw new AssertionError("rank " + rank + " uses shared memory although rank 1 could not create its block");
        }
        DType t = DType.FLOAT32;
        UnsafeBuffer b = arena.reset().inputs(rank, 1_000_003, t, 0);
        comm.world().allReduce(b, t, ReduceOp.SUM);
        check("all-reduce after the fallback", b, t, 1_000_003, i -> reference(n, i, t, ReduceOp.SUM));
        System.out.println("OK fell back together");
    }

    void killLoop() {
        DType t = DType.FLOAT32;
        UnsafeBuffer b = arena.buffer(1_000_003, t);
        for (int iter = 0; ; iter++) {
            comm.world().allReduce(b, t, ReduceOp.SUM);
            System.out.println("ITER " + iter);
        }
    }
}
