package dev.tessera.coordinator.spark;

import dev.tessera.comm.ChildJvm;
import dev.tessera.comm.DriverMode;
import dev.tessera.coordinator.JobFailedException;
import dev.tessera.coordinator.launch.Launcher;
import dev.tessera.coordinator.launch.LocalLauncher;
import dev.tessera.coordinator.launch.Placement;
import dev.tessera.coordinator.launch.WorkerState;
import dev.tessera.worker.cluster.ClusterSettings;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.run.WorkerArgs;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaSparkContext;
import scala.reflect.ClassTag$;

/**
 * Runs one attempt's workers as the tasks of one Spark barrier stage, one task per rank ({@link BarrierWorkerTask});
 * this process, the Spark driver, is the coordinator. The stage is submitted when the launcher is made; the
 * tasks call back over a {@link LaunchChannel} this opens, and {@link #placement} waits until all of them have.
 * A worker on the driver's machine shares the coordinator's media driver; any other runs its own, under a host id
 * of its own even when two tasks land on one machine (they then talk UDP). {@link #close()} ends the workers and
 * cancels the stage's job group, so Spark retries nothing of an attempt the supervisor gave up.
 */
final class SparkLauncher implements Launcher {

    /** How long the tasks may take to report in: executors starting, or freeing up, takes a while. */
    static final long REPORT_IN_TIMEOUT_MS = TimeUnit.SECONDS.toMillis(240);
    private static final int HANDSHAKE_TIMEOUT_MS = 30_000;

    private final SparkContext spark;
    private final int world;
    private final int workerMemoryMb;
    private final Placement coordinator;
    private final String machine = SparkHosts.machineId();
    private final byte[] secret = random(32);
    private final String jobGroup = "tessera-" + HexFormat.of().formatHex(random(6));
    private final ServerSocket server;
    private final Map<Integer, TaskConnection> tasks = new TreeMap<>();
    private final Thread acceptor;
    private final Thread stage;
    private Throwable stageFailure;
    private boolean stageEnded;
    private boolean closed;

    SparkLauncher(SparkContext spark, JobConfig job) {
        this.spark = spark;
        this.world = job.mesh().world();
        this.workerMemoryMb = job.launch().workerMemoryMb();
        String address = coordinatorAddress(spark, job.launch().bindAddress());
        this.coordinator = new Placement(LocalLauncher.hostName() + "-" + ProcessHandle.current().pid(), address,
                DriverMode.SHARED_PER_HOST);
        try {
            this.server = new ServerSocket();
            server.bind(new InetSocketAddress(address, 0), world);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open the launch channel for Spark tasks on " + address, e);
        }
        this.acceptor = new Thread(this::acceptTasks, "tessera-spark-accept");
        acceptor.setDaemon(true);
        acceptor.start();
        BarrierWorkerTask task = new BarrierWorkerTask(address, server.getLocalPort(), secret);
        this.stage = new Thread(() -> runStage(task), "tessera-spark-stage");
        stage.setDaemon(true);
        stage.start();
    }

    /**
     * {@code launch.bind_address} when it names an address; otherwise the address Spark gives the driver
     * ({@code spark.driver.host}), which every executor reaches.
     */
    private static String coordinatorAddress(SparkContext spark, String bindAddress) {
        if (!bindAddress.equals(ClusterSettings.LOOPBACK)) {
            return bindAddress;
        }
        String host = spark.getConf().get("spark.driver.host", ClusterSettings.LOOPBACK);
        try {
            return InetAddress.getByName(host).getHostAddress();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot resolve spark.driver.host " + host, e);
        }
    }

    private void runStage(BarrierWorkerTask task) {
        try {
            spark.setJobGroup(jobGroup, "Tessera: " + world + " workers", true);
            List<Integer> ranks = IntStream.range(0, world).boxed().toList();
            JavaSparkContext.fromSparkContext(spark).parallelize(ranks, world).rdd().barrier()
                    .mapPartitions(task, false, ClassTag$.MODULE$.apply(String.class)).collect();
            stageDone(null);
        } catch (Throwable e) {
            stageDone(e);
        }
    }

    private synchronized void stageDone(Throwable failure) {
        stageEnded = true;
        stageFailure = failure;
        notifyAll();
    }

    private void acceptTasks() {
        while (!server.isClosed()) {
            try {
                Socket socket = server.accept();
                try {
                    register(socket);
                } catch (IOException | RuntimeException e) {
                    System.err.println("spark: refused a launch connection from " + socket.getRemoteSocketAddress()
                            + ": " + e.getMessage());
                    socket.close();
                }
            } catch (IOException closed) {
                return;
            }
        }
    }

    private void register(Socket socket) throws IOException {
        socket.setSoTimeout(HANDSHAKE_TIMEOUT_MS);
        DataInputStream in = new DataInputStream(socket.getInputStream());
        DataOutputStream out = new DataOutputStream(socket.getOutputStream());
        byte[] challenge = random(LaunchChannel.CHALLENGE_BYTES);
        out.write(challenge);
        out.flush();
        byte[] answer = in.readNBytes(32);
        if (!LaunchChannel.answers(secret, challenge, answer)) {
            throw new IOException("it does not know this job's launch secret");
        }
        int rank = in.readInt();
        String taskMachine = in.readUTF();
        String address = in.readUTF();
        socket.setSoTimeout(0);
        synchronized (this) {
            if (closed || rank < 0 || rank >= world || tasks.containsKey(rank)) {
                throw new IOException("rank " + rank + " is not expected (closed " + closed + ", world " + world
                        + ", reported " + tasks.keySet() + ")");
            }
            tasks.put(rank, new TaskConnection(rank, taskMachine, address, socket, in, out));
            notifyAll();
        }
    }

    /** Waits until every task has reported in; fails naming what is missing when the deadline passes. */
    private synchronized TaskConnection reported(int rank) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(REPORT_IN_TIMEOUT_MS);
        try {
            while (tasks.size() < world) {
                if (stageEnded) {
                    throw new JobFailedException("the Spark barrier stage ended before its " + world + " tasks"
                            + " reported in (" + tasks.size() + " did): " + firstLine(stageFailure));
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new JobFailedException("waited " + REPORT_IN_TIMEOUT_MS / 1000 + " s for the " + world
                            + " Spark barrier tasks of this job to report in; ranks " + tasks.keySet() + " did."
                            + " A barrier stage needs " + world + " free task slots at once");
                }
                wait(Math.max(1, left / 1_000_000));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new JobFailedException("interrupted while waiting for the Spark barrier tasks to report in");
        }
        return tasks.get(rank);
    }

    @Override
    public Placement coordinator() {
        return coordinator;
    }

    @Override
    public Placement placement(int rank) {
        TaskConnection task = reported(rank);
        if (task.machine.equals(machine)) {
            return new Placement(coordinator.hostId(), task.address, DriverMode.SHARED_PER_HOST);
        }
        return new Placement(task.machine.replaceFirst("/.*", "") + "-rank" + rank, task.address,
                DriverMode.PER_PROCESS);
    }

    @Override
    public void start(WorkerArgs args, Map<String, String> env) {
        TaskConnection task = reported(args.rank());
        List<String> flags = new ArrayList<>(ChildJvm.inheritedJvmFlags());
        flags.addAll(LocalLauncher.workerJvmArgs(workerMemoryMb, 1)); // the task sets the threads it can give
        try {
            task.start(flags, args.toList(), env);
        } catch (IOException e) {
            throw new JobFailedException("cannot start " + task.describe() + ": " + e.getMessage());
        }
    }

    @Override
    public synchronized WorkerState state(int rank) {
        TaskConnection task = tasks.get(rank);
        return task == null ? WorkerState.UNSEEN : task.state();
    }

    @Override
    public synchronized String describe(int rank) {
        TaskConnection task = tasks.get(rank);
        return task == null ? "worker rank " + rank + " (Spark barrier task not reported in)" : task.describe();
    }

    @Override
    public void awaitExit(long timeoutMs) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        List<TaskConnection> all;
        synchronized (this) {
            all = List.copyOf(tasks.values());
        }
        try {
            for (TaskConnection t : all) {
                t.awaitEnd(deadline);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        List<TaskConnection> all;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            all = List.copyOf(tasks.values());
        }
        all.forEach(TaskConnection::close); // each task ends its worker when the driver hangs up
        try {
            server.close();
        } catch (IOException e) {
            // closed already
        }
        boolean stageFailed;
        try {
            if (!all.isEmpty() && all.stream().allMatch(t -> t.state().status() == WorkerState.Status.EXITED
                    && t.state().exitCode() == 0)) {
                awaitStageEnd(TimeUnit.SECONDS.toMillis(10)); // every worker is done: its task returns at once
            }
            boolean running;
            synchronized (this) {
                stageFailed = stageEnded && stageFailure != null; // a failure of its own, not the cancellation below
                running = !stageEnded;
            }
            if (running) {
                spark.cancelJobGroup(jobGroup);
            }
            stage.join(TimeUnit.SECONDS.toMillis(60));
            acceptor.join(TimeUnit.SECONDS.toMillis(5));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        synchronized (this) {
            if (stage.isAlive()) {
                System.err.println("spark: the barrier stage of job group " + jobGroup + " did not end within 60 s"
                        + " of its cancellation");
            } else if (stageFailed) {
                System.err.println("spark: the barrier stage failed: " + firstLine(stageFailure));
            }
        }
    }

    private synchronized void awaitStageEnd(long timeoutMs) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (!stageEnded) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return;
            }
            wait(Math.max(1, left / 1_000_000));
        }
    }

    private static String firstLine(Throwable t) {
        if (t == null) {
            return "it completed";
        }
        String m = String.valueOf(t.getMessage());
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }

    private static byte[] random(int bytes) {
        byte[] b = new byte[bytes];
        new SecureRandom().nextBytes(b);
        return b;
    }
}
