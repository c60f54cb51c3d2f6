package dev.tessera.coordinator;

import dev.tessera.comm.ChildJvm;
import dev.tessera.comm.CommConfig;
import dev.tessera.comm.DriverMode;
import dev.tessera.comm.MediaDriverHost;
import dev.tessera.comm.Transport;
import dev.tessera.comm.UserInputException;
import dev.tessera.comm.bench.CommBenchWorker;
import dev.tessera.coordinator.launch.ChildJvms;
import org.agrona.UnsafeApi;
import org.agrona.BufferUtil;

import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code tessera bench comm}: starts {@code ranks} worker processes on this host, times all-reduce,
 * reduce-scatter, all-gather and all-to-all from 4 KB up to {@code maxBytes}, and measures memcpy bandwidth in
 * the same run as the ceiling to compare with. Bus bandwidth follows nccl-tests: all-reduce moves
 * {@code 2(N-1)/N} of the buffer per rank, the others {@code (N-1)/N}.
 */
public final class CommBench {

    /** Where the timed buffers live. */
    public enum Buffers {
        /** In the group's {@link dev.tessera.comm.SymmetricMemory}: on one host, peers' memory is read directly. */
        symmetric,
        /**
         * Plain direct buffers: large all-reduces on one host go through the group's staging slots, the rest
         * through Aeron.
         */
        plain
    }

    private CommBench() {
    }

    public static int run(int ranks, Transport transport, DriverMode mode, Buffers buffers, boolean json,
                          long maxBytes, PrintWriter out) throws InterruptedException {
        if (ranks < 2 || ranks > 16) {
            throw new UserInputException("--ranks must be in [2, 16] (got " + ranks + ")");
        }
        if (maxBytes < 4096 || maxBytes > (1L << 30)) {
            throw new UserInputException("--max-bytes must be in [4096, 1073741824] (got " + maxBytes + ")");
        }
        if (mode == DriverMode.PER_PROCESS && transport == Transport.IPC) {
            throw new UserInputException("--transport ipc needs the shared driver (--driver shared)");
        }
        Transport effective = mode == DriverMode.PER_PROCESS ? Transport.UDP : transport;
        // Large enough to miss every cache: the figure is DRAM bandwidth, the ceiling for big collectives.
        double memcpy = memcpyGbps(256 << 20);
        String jobId = "bench" + ProcessHandle.current().pid();
        byte[] secret = new byte[32];
        new SecureRandom().nextBytes(secret);
        String token = HexFormat.of().formatHex(secret);
        String dir = MediaDriverHost.directoryFor(jobId, "host");
        int basePort = 41000 + (int) (ProcessHandle.current().pid() % 2000) * 8;
        long direct = 2 * maxBytes + (256L << 20);
        MediaDriverHost driver = mode == DriverMode.SHARED_PER_HOST
                ? MediaDriverHost.launch(dir, CommConfig.MAX_MTU, 16 << 20) : null;
        try (ChildJvms launcher = new ChildJvms(List.of("-Xmx512m",
                "-XX:MaxDirectMemorySize=" + direct, "-XX:+UseSerialGC"))) {
            List<ChildJvm> workers = new ArrayList<>();
            for (int r = 0; r < ranks; r++) {
                workers.add(launcher.start("bench-" + r, ChildJvms.pinnedTo(ChildJvms.cpusFor(r, ranks)),
                        CommBenchWorker.class.getName(),
                        List.of(Integer.toString(r), Integer.toString(ranks), jobId, dir, effective.name(),
                                mode.name(), Long.toString(maxBytes), Integer.toString(basePort), buffers.name()),
                        Map.of(CommConfig.TOKEN_ENV, token)));
            }
            String label = effective == Transport.UDP ? "udp" : "ipc";
            if (!json) {
                out.printf(Locale.ROOT, "comm bench: %d ranks, transport %s, driver %s, %s buffers, memcpy %.1f GB/s%n",
                        ranks, label, mode == DriverMode.PER_PROCESS ? "per-process" : "shared", buffers, memcpy);
                out.printf("%-15s %12s %12s %12s %12s%n", "op", "bytes", "latency_us", "busbw_GB/s", "p50_us");
            }
            int printed = 0;
            ChildJvm lead = workers.get(0);
            // Each wait inside the workers has its own deadline; this one bounds the whole run.
            long deadline = System.nanoTime() + 30L * 60 * 1_000_000_000L;
            while (true) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("comm bench: rank 0 did not finish within 30 minutes");
                }
                boolean finished = !lead.process().isAlive();
                List<String> lines = lead.output().lines().filter(l -> l.startsWith("RESULT ")).toList();
                for (; printed < lines.size(); printed++) {
                    String[] f = lines.get(printed).split(" ");
                    if (json) {
                        out.printf(Locale.ROOT, "{\"op\":\"%s\",\"bytes\":%s,\"ranks\":%d,\"transport\":\"%s\","
                                + "\"latency_us\":%s,\"busbw_gbps\":%s,\"latency_p50_us\":%s,\"buffers\":\"%s\"}%n",
                                f[1], f[2], ranks, label, f[3], f[4], f[5], buffers);
                    } else {
                        out.printf("%-15s %12s %12s %12s %12s%n", f[1], f[2], f[3], f[4], f[5]);
                    }
                }
                out.flush();
                if (finished) {
                    break;
                }
                Thread.sleep(100);
            }
            for (ChildJvm w : workers) {
                int code = w.waitFor(30_000);
                if (code != 0) {
                    String tail = w.output().lines().filter(l -> !l.startsWith("RESULT") && !l.startsWith("WARNING"))
                            .reduce((a, b) -> a + "\n" + b).orElse("");
                    throw new IllegalStateException("bench worker " + w.name() + " exited " + code + ": " + tail);
                }
            }
            if (json) {
                out.printf(Locale.ROOT, "{\"memcpy_gbps\":%.2f}%n", memcpy);
            }
            out.flush();
            return 0;
        } finally {
            if (driver != null) {
                driver.close();
            }
        }
    }

    /** Copy bandwidth between two buffers of {@code bytes}, best of several rounds (bytes copied / time). */
    static double memcpyGbps(int bytes) {
        ByteBuffer a = ByteBuffer.allocateDirect(bytes);
        ByteBuffer b = ByteBuffer.allocateDirect(bytes);
        long from = BufferUtil.address(a);
        long to = BufferUtil.address(b);
        UnsafeApi.setMemory(from, bytes, (byte) 1);
        UnsafeApi.setMemory(to, bytes, (byte) 2);
        double best = 0;
        for (int round = 0; round < 8; round++) {
            long start = System.nanoTime();
            UnsafeApi.copyMemory(from, to, bytes);
            long took = System.nanoTime() - start;
            best = Math.max(best, bytes / (took / 1e9) / 1e9);
        }
        return best;
    }
}
