package dev.tessera.coordinator;

import dev.tessera.comm.CommConfig;
import dev.tessera.comm.LocalProcessLauncher;
import dev.tessera.worker.run.WorkerArgs;
import dev.tessera.worker.run.WorkerMain;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The default launcher: {@code W} worker JVMs on this host, the cores divided among them (ND4J/OpenBLAS and
 * Tessera's kernel threads alike, and each worker bound to its share, so that no two processes fight over one
 * core). A shutdown hook stops them if the coordinator is interrupted (Ctrl-C); a killed coordinator is
 * noticed by the workers themselves.
 */
final class LocalWorkers implements AutoCloseable {

    private final LocalProcessLauncher launcher;
    private final Thread shutdownHook;

    private LocalWorkers(LocalProcessLauncher launcher) {
        this.launcher = launcher;
        this.shutdownHook = new Thread(launcher::close, "tessera-stop-workers");
        Runtime.getRuntime().addShutdownHook(shutdownHook);
    }

    static LocalWorkers start(List<WorkerArgs> ranks, String token, int workerMemoryMb) {
        int threads = Math.max(1, Runtime.getRuntime().availableProcessors() / ranks.size());
        // Heap for the JVM's own objects; the tensors live off-heap under javacpp's limit.
        List<String> jvm = List.of("-Xmx" + Math.max(256, workerMemoryMb / 4) + "m",
                "-Dorg.bytedeco.javacpp.maxbytes=" + workerMemoryMb + "M",
                "-Dorg.bytedeco.javacpp.maxphysicalbytes=" + workerMemoryMb + "M",
                "-Dtessera.kernel.threads=" + threads);
        LocalWorkers workers = new LocalWorkers(new LocalProcessLauncher(new ArrayList<>(jvm)));
        for (WorkerArgs args : ranks) {
            workers.launcher.start("rank-" + args.rank(), WorkerMain.class.getName(), args.toList(),
                    Map.of(CommConfig.TOKEN_ENV, token, "OMP_NUM_THREADS", Integer.toString(threads)),
                    LocalProcessLauncher.cpusFor(args.rank(), ranks.size()));
        }
        return workers;
    }

    /** The worker of {@code rank}. */
    LocalProcessLauncher.Worker worker(int rank) {
        return launcher.workers().get(rank);
    }

    int count() {
        return launcher.workers().size();
    }

    /** Waits up to {@code timeoutMs} for every worker to exit on its own. */
    void awaitExit(long timeoutMs) {
        long until = System.currentTimeMillis() + timeoutMs;
        for (LocalProcessLauncher.Worker w : launcher.workers()) {
            w.waitFor(Math.max(1, until - System.currentTimeMillis()));
        }
    }

    @Override
    public void close() {
        launcher.close();
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException shuttingDown) {
            // the hook is running or has run: nothing left to remove
        }
    }
}
