package dev.tessera.coordinator.launch;

import dev.tessera.comm.ChildJvm;
import dev.tessera.comm.DriverMode;
import dev.tessera.comm.ProcessState;
import dev.tessera.worker.cluster.ClusterSettings;
import dev.tessera.worker.run.WorkerArgs;
import dev.tessera.worker.run.WorkerMain;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;
import java.util.regex.Pattern;

/**
 * The default launcher: worker JVMs as child processes of the coordinator, on this machine, the cores divided
 * among them (ND4J/OpenBLAS and Tessera's kernel threads alike, and each worker bound to its share, so that no
 * two processes fight over one core). By default every worker binds loopback and shares the coordinator's media
 * driver; a launcher made with placements and a command prefix puts each one elsewhere, e.g. in its own network
 * namespace ({@code ip netns exec}) as a host of its own. A shutdown hook stops the workers if the coordinator is
 * interrupted (Ctrl-C); a killed coordinator is noticed by the workers themselves.
 */
public final class LocalLauncher implements Launcher {

    /** The JVM's own notices on a worker's output ("WARNING: Using incubator modules", VM warnings). */
    private static final Pattern JVM_NOTICE =
            Pattern.compile("^(WARNING: |OpenJDK .*VM warning: |Java HotSpot.*VM warning: |Picked up ).*");

    private final Placement coordinator;
    private final List<Placement> placements;
    private final IntFunction<List<String>> prefix;
    private final int threads;
    private final ChildJvms jvms;
    private final Map<Integer, ChildJvm> started = new HashMap<>();
    private final Thread shutdownHook;

    /**
     * @param coordinator    where the coordinator runs: the address the workers reach it at
     * @param workers        where each rank runs, by rank
     * @param prefix         the command each rank's JVM is exec'd under (none: {@code List.of()})
     * @param workerMemoryMb each worker's memory: the heap's limit, and the whole process's under javacpp
     */
    public LocalLauncher(Placement coordinator, List<Placement> workers, IntFunction<List<String>> prefix,
                         int workerMemoryMb) {
        this.coordinator = coordinator;
        this.placements = List.copyOf(workers);
        this.prefix = prefix;
        this.threads = Math.max(1, Runtime.getRuntime().availableProcessors() / workers.size());
        this.jvms = new ChildJvms(workerJvmArgs(workerMemoryMb, threads));
        this.shutdownHook = new Thread(jvms::close, "tessera-stop-workers");
        Runtime.getRuntime().addShutdownHook(shutdownHook);
    }

    /**
     * The JVM options of one worker of {@code workerMemoryMb} running {@code threads} kernel threads, after the
     * module flags: the same for every launcher.
     */
    public static List<String> workerJvmArgs(int workerMemoryMb, int threads) {
        List<String> args = new ArrayList<>(memoryFlags(workerMemoryMb));
        args.add("-Dtessera.kernel.threads=" + threads);
        return args;
    }

    /** A worker JVM's young generation, in MB (see {@link #memoryFlags}). */
    static final int YOUNG_MB = 16;

    /**
     * A worker JVM's memory flags for a budget of {@code workerMemoryMb}. The heap may take the whole budget: the
     * fused attention kernel keeps its probabilities and scratch in Java arrays, which grow with the square of the
     * sequence. The planner has checked that the process's total fits, and javacpp's physical limit, which counts the
     * heap too, holds it to that. The young generation is fixed at {@link #YOUNG_MB}: training makes little garbage
     * (a few MB a second), and every page of a larger young generation that garbage has once filled stays resident,
     * which was 116 MB of each worker's peak with the large preset. With 32 MB its workers collected every 90 s or
     * so in steady state, in 2-7 ms; 16 MB took another 13 MB off their peak.
     */
    static List<String> memoryFlags(int workerMemoryMb) {
        return List.of("-Xmx" + Math.max(256, workerMemoryMb) + "m",
                "-Xmn" + YOUNG_MB + "m",
                "-Dorg.bytedeco.javacpp.maxbytes=" + workerMemoryMb + "M",
                "-Dorg.bytedeco.javacpp.maxphysicalbytes=" + workerMemoryMb + "M");
    }

    /** {@code workers} JVMs on loopback, all on this host's shared media driver: the single-host job. */
    public static LocalLauncher onLoopback(int workers, int workerMemoryMb) {
        return onThisHost(ClusterSettings.LOOPBACK, workers, workerMemoryMb);
    }

    /**
     * {@code workers} JVMs on this host's shared media driver, they and the coordinator bound to {@code address}
     * (one of this host's, {@code launch.bind_address}).
     */
    public static LocalLauncher onThisHost(String address, int workers, int workerMemoryMb) {
        Placement here = new Placement(hostName() + "-" + ProcessHandle.current().pid(), address,
                DriverMode.SHARED_PER_HOST);
        return new LocalLauncher(here, Collections.nCopies(workers, here), rank -> List.of(), workerMemoryMb);
    }

    @Override
    public Placement coordinator() {
        return coordinator;
    }

    @Override
    public Placement placement(int rank) {
        return placements.get(rank);
    }

    @Override
    public synchronized void start(WorkerArgs args, Map<String, String> env) {
        int rank = args.rank();
        List<String> command = new ArrayList<>(prefix.apply(rank));
        command.addAll(ChildJvms.pinnedTo(ChildJvms.cpusFor(rank, placements.size())));
        Map<String, String> environment = new HashMap<>(env);
        environment.put("OMP_NUM_THREADS", Integer.toString(threads));
        started.put(rank, jvms.start("rank-" + rank, command, WorkerMain.class.getName(), args.toList(),
                environment));
    }

    @Override
    public synchronized WorkerState state(int rank) {
        ChildJvm child = started.get(rank);
        if (child == null) {
            return WorkerState.UNSEEN;
        }
        Process p = child.process();
        if (!p.isAlive()) {
            return WorkerState.exited(p.exitValue(), p.exitValue() == 0 ? "" : lastLine(child.output()));
        }
        return ProcessState.isStopped(p.pid()) ? WorkerState.STOPPED : WorkerState.RUNNING;
    }

    @Override
    public synchronized String describe(int rank) {
        ChildJvm child = started.get(rank);
        String address = placements.get(rank).address();
        return "worker rank " + rank + " (" + (child == null ? "not started" : "pid " + child.process().pid())
                + " on " + hostName() + (address.equals(ClusterSettings.LOOPBACK) ? "" : " at " + address) + ")";
    }

    @Override
    public void awaitExit(long timeoutMs) {
        long until = System.currentTimeMillis() + timeoutMs;
        for (ChildJvm c : jvms.children()) {
            c.waitFor(Math.max(1, until - System.currentTimeMillis()));
        }
    }

    @Override
    public void close() {
        jvms.close();
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException shuttingDown) {
            // the hook is running or has run: nothing left to remove
        }
    }

    /**
     * The worker's last line that is not part of a stack trace nor one of the JVM's own notices: what it said
     * when it failed, as ": line", or "" when it said nothing.
     */
    public static String lastLine(String output) {
        String[] lines = output.strip().split("\n");
        for (int i = lines.length - 1; i >= 0; i--) {
            String line = lines[i].strip();
            if (!line.isEmpty() && !line.startsWith("at ") && !line.startsWith("...") && !line.startsWith("Caused by")
                    && !JVM_NOTICE.matcher(line).matches()) {
                return ": " + line;
            }
        }
        return "";
    }

    public static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            return "localhost";
        }
    }
}
