package dev.tessera.coordinator.launch;

import dev.tessera.comm.ChildJvm;
import dev.tessera.comm.DriverMode;
import dev.tessera.worker.run.WorkerArgs;
import dev.tessera.worker.run.WorkerMain;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * The workers of a cluster file's hosts: over OpenSSH on remote hosts, as child processes on the local one, ranks
 * numbered host by host in the file's order. Every worker runs the same small script ({@link HostProcess}), its log
 * streamed with a rank prefix. A local host's workers share the coordinator's host and media driver; a remote
 * host's each run a driver of their own under a host id of their own (so two workers of one remote host talk UDP,
 * as the supervisor's placement rules require).
 *
 * <p>No worker outlives {@link #close()}: it ends the remote JVMs by pid over a new ssh session (checking that the
 * pid still runs this job), then the ssh clients; a worker whose ssh session is cut without that (a killed
 * coordinator, a lost link) stops by itself when its parent, the session's sshd, goes away ({@link WorkerMain}
 * watches it), or when the coordinator leaves the job's Hazelcast cluster.
 */
public final class ClusterLauncher implements Launcher {

    private static final String COORDINATOR_HOST = "coordinator-" + LocalLauncher.hostName() + "-"
            + ProcessHandle.current().pid();
    private static final Pattern ENV_NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");

    private final Placement coordinator;
    private final List<ClusterHost> hostOfRank = new ArrayList<>();
    private final List<Placement> placements = new ArrayList<>();
    private final int workerMemoryMb;
    private final List<String> jvmOptions;
    private final PrintStream logs;
    private final Map<Integer, HostProcess> started = new TreeMap<>();
    private final Map<Integer, String> aeronDirs = new HashMap<>();
    private final Thread shutdownHook = new Thread(this::stopAll, "tessera-stop-cluster-workers");
    private String jobId;
    private boolean closed;

    /**
     * @param hosts              the cluster's hosts, in rank order
     * @param coordinatorAddress the address of this machine the workers reach the coordinator at
     * @param workerMemoryMb     each worker's memory ({@code launch.worker_memory_mb})
     * @param jvmOptions         more options for every worker JVM (after Tessera's own)
     * @param logs               where the workers' prefixed lines go
     */
    public ClusterLauncher(List<ClusterHost> hosts, String coordinatorAddress, int workerMemoryMb,
                           List<String> jvmOptions, PrintStream logs) {
        this.coordinator = new Placement(COORDINATOR_HOST, coordinatorAddress, DriverMode.SHARED_PER_HOST);
        for (ClusterHost host : hosts) {
            for (int i = 0; i < host.workers(); i++) {
                hostOfRank.add(host);
                placements.add(host.local()
                        ? new Placement(COORDINATOR_HOST, host.address(), DriverMode.SHARED_PER_HOST)
                        : new Placement(host.workers() == 1 ? host.name() : host.name() + "/" + i, host.address(),
                        DriverMode.PER_PROCESS));
            }
        }
        this.workerMemoryMb = workerMemoryMb;
        this.jvmOptions = List.copyOf(jvmOptions);
        this.logs = logs;
        Runtime.getRuntime().addShutdownHook(shutdownHook);
    }

    /** The number of workers over all hosts: the world size the job must have. */
    public int workers() {
        return placements.size();
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
        if (closed) {
            throw new IllegalStateException("the launcher is closed; rank " + args.rank() + " was not started");
        }
        int rank = args.rank();
        jobId = args.jobId();
        aeronDirs.put(rank, args.aeronDir());
        ClusterHost host = hostOfRank.get(rank);
        List<String> names = new ArrayList<>(new TreeMap<>(env).keySet()); // read from stdin in this order
        names.forEach(name -> {
            if (!ENV_NAME.matcher(name).matches() || env.get(name).contains("\n")) {
                throw new IllegalArgumentException("environment variable " + name + " cannot be passed on a line");
            }
        });
        started.put(rank, HostProcess.start(rank, host, script(host, args, names), names, env, logs));
    }

    /**
     * Reads the environment ({@code envNames}, the job token among them) from stdin, divides the host's cores among
     * its workers, says the shell's pid (which exec makes the JVM's) and execs the worker.
     */
    private String script(ClusterHost host, WorkerArgs args, List<String> envNames) {
        List<String> java = new ArrayList<>();
        java.add(host.local() ? Path.of(System.getProperty("java.home"), "bin", "java").toString() : host.java());
        java.addAll(ChildJvm.inheritedJvmFlags());
        java.addAll(LocalLauncher.memoryFlags(workerMemoryMb));
        if (!host.local()) { // the coordinator's natives cache is a path of this machine
            java.add("-Dorg.bytedeco.javacpp.cachedir=" + host.distribution() + "/.cache/javacpp");
        }
        java.addAll(jvmOptions);
        List<String> main = new ArrayList<>(List.of("-cp",
                host.local() ? System.getProperty("java.class.path") : host.distribution() + "/lib/*",
                WorkerMain.class.getName()));
        main.addAll(args.toList());
        StringBuilder s = new StringBuilder();
        for (String key : envNames) {
            s.append("IFS= read -r ").append(key).append(" || { echo 'tessera: no ").append(key)
                    .append(" on stdin' >&2; exit 97; }; export ").append(key).append("; ");
        }
        s.append("t=$(( $(nproc) / ").append(host.workers()).append(" )); [ \"$t\" -ge 1 ] || t=1; ");
        s.append("export OMP_NUM_THREADS=$t; echo \"").append(HostProcess.PID_LINE).append("$$\"; exec ");
        s.append(quoted(java)).append(" \"-Dtessera.kernel.threads=$t\" ").append(quoted(main));
        return s.toString();
    }

    private static String quoted(List<String> words) {
        return words.stream().map(HostShell::quote).collect(Collectors.joining(" "));
    }

    @Override
    public synchronized WorkerState state(int rank) {
        HostProcess p = started.get(rank);
        if (p == null) {
            return WorkerState.UNSEEN;
        }
        if (p.process().isAlive()) {
            return WorkerState.RUNNING; // a remote worker stopped by a signal shows as silence, not here
        }
        int code = p.process().exitValue();
        String said = code == 0 ? "" : LocalLauncher.lastLine(p.output());
        return WorkerState.exited(code, p.host().local() ? said : overSsh(p, code, said));
    }

    /**
     * What an ssh client's exit code says: 255 is ssh's own failure, which is also how it reports a remote
     * command killed by a signal; 129 to 254 here is the client itself killed by a signal (the remote command's
     * own codes come back as they are).
     */
    private static String overSsh(HostProcess p, int code, String said) {
        String host = p.host().describe();
        if (code == 255) {
            return p.workerPid() < 0 ? ": ssh to " + host + " failed" + said
                    : ": its ssh session ended: the worker was killed, or the link to " + host + " broke" + said;
        }
        if (code > 128 && code < 255) {
            return ": its ssh client here was killed (signal " + (code - 128) + "); the worker on " + host
                    + " stops with its session" + said;
        }
        return said;
    }

    @Override
    public synchronized String describe(int rank) {
        HostProcess p = started.get(rank);
        ClusterHost host = hostOfRank.get(rank);
        if (p == null) {
            return "worker rank " + rank + " (not started, on " + host.describe() + ")";
        }
        String pid = p.workerPid() < 0 ? "pid not yet known" : "pid " + p.workerPid();
        if (host.local()) {
            return "worker rank " + rank + " (" + pid + " on " + host.describe() + ")";
        }
        return "worker rank " + rank + " (" + pid + " on " + host.describe() + ", over ssh client pid "
                + p.process().pid() + ")";
    }

    @Override
    public void awaitExit(long timeoutMs) {
        long until = System.currentTimeMillis() + timeoutMs;
        for (HostProcess p : processes()) {
            p.waitFor(Math.max(1, until - System.currentTimeMillis()));
        }
    }

    @Override
    public void close() {
        stopAll();
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException shuttingDown) {
            // the hook is running or has run
        }
    }

    private synchronized List<HostProcess> processes() {
        return List.copyOf(started.values());
    }

    /**
     * Ends every worker: on each remote host one ssh session that TERMs this job's worker pids, KILLs those left
     * after a grace period and removes their Aeron directories; then the ssh clients and the local workers, the
     * same way.
     */
    private void stopAll() {
        List<HostProcess> all;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            all = List.copyOf(started.values());
        }
        Map<ClusterHost, List<HostProcess>> byHost = new LinkedHashMap<>();
        for (HostProcess p : all) {
            if (!p.host().local()) {
                byHost.computeIfAbsent(p.host(), h -> new ArrayList<>()).add(p);
            }
        }
        List<Thread> stops = new ArrayList<>();
        byHost.forEach((host, processes) -> {
            Thread t = new Thread(() -> stopOn(host, processes), "tessera-stop-" + host.name());
            t.start();
            stops.add(t);
        });
        for (HostProcess p : all) { // local workers, and the ssh clients of remote ones that already ended
            if (p.host().local() || !p.process().isAlive()) {
                p.process().destroy();
            }
        }
        for (Thread t : stops) {
            try {
                t.join(TimeUnit.SECONDS.toMillis(40));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        for (HostProcess p : all) {
            p.process().destroy();
            if (!p.waitFor(Math.max(1, TimeUnit.NANOSECONDS.toMillis(until - System.nanoTime())))) {
                p.process().destroyForcibly();
                p.waitFor(5000);
            }
        }
    }

    /** The remote half of {@link #stopAll}: kills by pid only what still runs this job. */
    private void stopOn(ClusterHost host, List<HostProcess> processes) {
        String pids = processes.stream().filter(p -> p.workerPid() > 0).map(p -> Long.toString(p.workerPid()))
                .collect(Collectors.joining(" "));
        String dirs = processes.stream().map(p -> HostShell.quote(aeronDirs.get(p.rank())))
                .collect(Collectors.joining(" "));
        String ours = "grep -qaF -- " + HostShell.quote(jobId) + " /proc/$p/cmdline 2>/dev/null";
        String script = "left() { for p in " + pids + "; do " + ours + " && return 0; done;"
                + " return 1; }; "
                + "for p in " + pids + "; do " + ours + " && kill -TERM $p; done; "
                + "i=0; while left && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; "
                + "for p in " + pids + "; do " + ours + " && kill -KILL $p; done; "
                + "i=0; while left && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; "
                + "rm -rf -- " + dirs + "; ! left";
        HostShell.Result r = HostShell.run(host, script, 30);
        if (!r.ok()) {
            logs.println("tessera: could not confirm that the workers of " + host.describe() + " (pids " + pids
                    + ") ended: " + (r.code() == 1 ? "still running" : r.output().strip()));
        }
    }
}
