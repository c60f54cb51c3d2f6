package dev.tessera.comm.bench;

import dev.tessera.comm.CommConfig;
import dev.tessera.comm.CommException;
import dev.tessera.comm.Communicator;
import dev.tessera.comm.DType;
import dev.tessera.comm.DriverMode;
import dev.tessera.comm.MediaDriverHost;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.ReduceOp;
import dev.tessera.comm.StaticPeerDirectory;
import dev.tessera.comm.Transport;
import org.agrona.concurrent.UnsafeBuffer;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Locale;

/**
 * One rank of {@code tessera bench comm}: {@code <rank> <ranks> <jobId> <aeronDir|-> <transport> <driverMode>
 * <maxBytes> <basePort> <symmetric|plain>}. Times each collective at sizes from 4 KB up; rank 0 prints one result line per
 * (op, size) as {@code RESULT op bytes latency_us busbw_gbps latency_p50_us}, the slowest rank's time counting.
 */
public final class CommBenchWorker {

    static final String[] OPS = {"all_reduce", "reduce_scatter", "all_gather", "all_to_all"};

    public static void main(String[] args) {
        int rank = Integer.parseInt(args[0]);
        int ranks = Integer.parseInt(args[1]);
        String jobId = args[2];
        Transport transport = Transport.valueOf(args[4]);
        DriverMode mode = DriverMode.valueOf(args[5]);
        long maxBytes = Long.parseLong(args[6]);
        int basePort = Integer.parseInt(args[7]);
        String dir = mode == DriverMode.PER_PROCESS ? MediaDriverHost.directoryFor(jobId, "r" + rank) : args[3];
        CommConfig config = CommConfig.defaults(jobId, CommConfig.tokenFromEnvironment())
                .withDriver(mode, dir).withTransport(transport).withDeadlineMs(120_000);
        try (Communicator comm = Communicator.connect(config, StaticPeerDirectory.localhost(ranks, basePort), rank)) {
            run(comm.world(), maxBytes, args[8].equals("symmetric"));
            comm.world().barrier();
        } catch (CommException e) {
            System.out.println("ERROR " + e.getMessage());
            System.exit(3);
        }
        System.exit(0);
    }

    static void run(ProcessGroup world, long maxBytes, boolean symmetric) {
        int n = world.size();
        int capacity = (int) maxBytes; // at most 1 GiB (CommBench checks)
        UnsafeBuffer a = symmetric ? world.allocateSymmetric(capacity).buffer()
                : new UnsafeBuffer(ByteBuffer.allocateDirect(capacity));
        UnsafeBuffer b = symmetric ? world.allocateSymmetric(capacity).buffer()
                : new UnsafeBuffer(ByteBuffer.allocateDirect(capacity));
        for (int i = 0; i + 4 <= capacity; i += 4) {
            a.putFloat(i, (i >> 2) % 97);
        }
        UnsafeBuffer timing = new UnsafeBuffer(ByteBuffer.allocateDirect(16));
        // Let C2 compile the ring paths (receive-and-reduce, forwarding) before anything is timed: a few
        // warm-up rounds per size are not enough, and interpreted reduce loops are 50x slower.
        long ringBytes = Math.min(capacity, 256 << 10) / (4L * n) * 4L * n;
        for (String op : OPS) {
            for (int i = 0; i < 400 && ringBytes > 0; i++) {
                once(world, op, a, b, ringBytes);
            }
            for (int i = 0; i < 3000; i++) {
                once(world, op, a, b, 4096 / (4L * n) * 4L * n);
            }
        }
        awaitCompilerIdle();
        world.barrier();
        for (long bytes = 4096; bytes <= maxBytes; bytes *= 4) {
            for (String op : OPS) {
                long usable = bytes / (4L * n) * 4L * n; // whole floats per rank
                if (usable == 0) {
                    continue;
                }
                int iters = bytes <= (64 << 10) ? 1000 : (int) Math.max(3, Math.min(100, (512L << 20) / bytes));
                int warmup = bytes <= (64 << 10) ? 3000 : (int) Math.max(3, Math.min(200, (64L << 20) / bytes));
                for (int i = 0; i < warmup; i++) {
                    once(world, op, a, b, usable);
                }
                world.barrier();
                long[] each = new long[iters];
                long start = System.nanoTime();
                for (int i = 0; i < iters; i++) {
                    long t = System.nanoTime();
                    once(world, op, a, b, usable);
                    each[i] = System.nanoTime() - t;
                }
                Arrays.sort(each);
                // Mean (what bus bandwidth is computed from, as nccl-tests does) and median (robust to the
                // scheduling stalls of a loaded machine); the slowest rank's figures count.
                timing.putDouble(0, (System.nanoTime() - start) / 1e9 / iters);
                timing.putDouble(8, each[iters / 2] / 1e9);
                world.allReduce(timing, DType.FLOAT64, ReduceOp.MAX);
                double seconds = timing.getDouble(0);
                double median = timing.getDouble(8);
                double factor = op.equals("all_reduce") ? 2.0 * (n - 1) / n : (double) (n - 1) / n;
                double busbw = usable / seconds * factor / 1e9;
                if (world.rank() == 0) {
                    System.out.println(String.format(Locale.ROOT, "RESULT %s %d %.1f %.3f %.1f", op, usable,
                            seconds * 1e6, busbw, median * 1e6));
                    System.out.flush();
                }
            }
        }
    }

    /**
     * Lets the JIT finish before the clock starts: a compiler thread still at work takes one of the two cores
     * from a rank, and its peers' waits then fall through to parking (tens of microseconds per small
     * operation). Waits until no compilation time accrued for half a second, at most 15 s.
     */
    private static void awaitCompilerIdle() {
        var jit = ManagementFactory.getCompilationMXBean();
        long until = System.nanoTime() + 15_000_000_000L;
        long last = -1;
        try {
            while (System.nanoTime() < until) {
                Thread.sleep(500);
                long now = jit.getTotalCompilationTime();
                if (now == last) {
                    return;
                }
                last = now;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void once(ProcessGroup g, String op, UnsafeBuffer a, UnsafeBuffer b, long bytes) {
        int n = g.size();
        int len = (int) bytes;
        switch (op) {
            case "all_reduce" -> g.allReduce(new UnsafeBuffer(a, 0, len), DType.FLOAT32, ReduceOp.SUM);
            case "reduce_scatter" -> g.reduceScatter(new UnsafeBuffer(a, 0, len), new UnsafeBuffer(b, 0, len / n),
                    DType.FLOAT32, ReduceOp.SUM);
            case "all_gather" -> g.allGather(new UnsafeBuffer(a, 0, len / n), new UnsafeBuffer(b, 0, len),
                    DType.FLOAT32);
            case "all_to_all" -> g.allToAll(new UnsafeBuffer(a, 0, len), new UnsafeBuffer(b, 0, len), DType.FLOAT32);
            default -> throw new IllegalArgumentException(op);
        }
    }
}
