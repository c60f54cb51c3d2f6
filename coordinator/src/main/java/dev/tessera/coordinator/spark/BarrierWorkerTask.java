package dev.tessera.coordinator.spark;

import dev.tessera.coordinator.launch.ChildJvms;
import dev.tessera.coordinator.launch.LocalLauncher;
import dev.tessera.worker.io.AtomicFiles;
import dev.tessera.worker.run.WorkerMain;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URISyntaxException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.spark.BarrierTaskContext;
import scala.collection.Iterator;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.AbstractFunction1;

/**
 * One task of the barrier stage: it runs the worker of rank {@code partitionId} as a child JVM and waits for it.
 * The child gets the jars this task was loaded from, not the executor's class path, so Spark's own libraries never
 * meet ND4J's, Aeron's or Hazelcast's. The task fails (and with it the stage) when the worker fails, with the
 * worker's last lines as the reason; a task that is killed, or a driver that hangs up, ends the worker.
 */
final class BarrierWorkerTask extends AbstractFunction1<Iterator<Integer>, Iterator<String>> implements Serializable {

    private static final long serialVersionUID = 1L;
    private static final int CONNECT_TIMEOUT_MS = 30_000;
    /** The driver sends the start message once every task has reported in and the ports are picked. */
    private static final int START_TIMEOUT_MS = 300_000;
    private static final int LAST_LINES = 15;

    private final String driverAddress;
    private final int driverPort;
    private final byte[] secret;

    BarrierWorkerTask(String driverAddress, int driverPort, byte[] secret) {
        this.driverAddress = driverAddress;
        this.driverPort = driverPort;
        this.secret = secret.clone();
    }

    @Override
    public Iterator<String> apply(Iterator<Integer> partition) {
        BarrierTaskContext task = BarrierTaskContext.get();
        int rank = task.partitionId();
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(driverAddress, driverPort), CONNECT_TIMEOUT_MS);
            String address = socket.getLocalAddress().getHostAddress(); // the one that reaches the driver
            String machine = SparkHosts.machineId();
            // Every task of the stage is running once this returns; each learns how many share its machine.
            String[] all = task.allGather(machine + " " + address);
            long sharing = Arrays.stream(all).filter(e -> e.startsWith(machine + " ")).count();
            DataInputStream in = new DataInputStream(socket.getInputStream());
            DataOutputStream out = new DataOutputStream(socket.getOutputStream());
            socket.setSoTimeout(START_TIMEOUT_MS);
            byte[] challenge = in.readNBytes(LaunchChannel.CHALLENGE_BYTES);
            out.write(LaunchChannel.answer(secret, challenge));
            out.writeInt(rank);
            out.writeUTF(machine);
            out.writeUTF(address);
            out.flush();
            if (in.readByte() != LaunchChannel.START) {
                throw new IOException("the driver sent something other than the start message");
            }
            List<String> jvmFlags = LaunchChannel.readList(in);
            List<String> args = LaunchChannel.readList(in);
            Map<String, String> env = LaunchChannel.readMap(in);
            socket.setSoTimeout(0); // from here on the driver speaks only by hanging up
            int threads = (int) Math.max(1, Runtime.getRuntime().availableProcessors() / sharing);
            int code = runWorker(rank, jvmFlags, args, env, threads, socket, out, task);
            return CollectionConverters.asScala(List.of("rank " + rank + " exited " + code).iterator());
        } catch (IOException e) {
            throw new UncheckedIOException("Tessera rank " + rank + ": the launch channel to the driver at "
                    + driverAddress + ":" + driverPort + " failed: " + e.getMessage(), e);
        }
    }

    private static int runWorker(int rank, List<String> jvmFlags, List<String> args, Map<String, String> env,
                                 int threads, Socket socket, DataOutputStream out, BarrierTaskContext task)
            throws IOException {
        // Owned by this executor: the next Tessera process on the host removes it if the executor is killed first.
        Path logDir = ChildJvms.ownedLogDirectory();
        Path log = logDir.resolve("rank-" + rank + ".log");
        try {
            List<String> command = new ArrayList<>();
            command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            command.addAll(jvmFlags);
            command.add("-Dtessera.kernel.threads=" + threads);
            command.add("-cp");
            command.add(workerClassPath());
            command.add(WorkerMain.class.getName());
            command.addAll(args);
            ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
            pb.environment().putAll(env);
            pb.environment().put("OMP_NUM_THREADS", Integer.toString(threads));
            Process worker = pb.start();
            out.writeByte(LaunchChannel.PID);
            out.writeLong(worker.pid());
            out.flush();
            Thread hangUpWatch = new Thread(() -> {
                try {
                    while (socket.getInputStream().read() >= 0) {
                        // the driver sends nothing more: any byte, or the end of the stream, means stop
                    }
                } catch (IOException closed) {
                    // the same: the driver is gone
                }
                worker.descendants().forEach(ProcessHandle::destroy);
                worker.destroy();
            }, "tessera-driver-hangup-" + rank);
            hangUpWatch.setDaemon(true);
            hangUpWatch.start();
            boolean killed = false;
            try {
                while (!worker.waitFor(1, TimeUnit.SECONDS)) {
                    if (task.isInterrupted()) { // the job group was cancelled, or Spark killed the stage
                        killed = true;
                        worker.destroyForcibly();
                    }
                }
            } catch (InterruptedException e) { // Spark kills a task by interrupting it
                killed = true;
                worker.descendants().forEach(ProcessHandle::destroyForcibly);
                try {
                    worker.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                } catch (InterruptedException again) {
                    // it was killed forcibly: it goes whether or not this waits
                }
                Thread.currentThread().interrupt();
            }
            int code = worker.isAlive() ? -1 : worker.exitValue();
            String output = Files.readString(log);
            out.writeByte(LaunchChannel.EXIT);
            out.writeInt(code);
            out.writeUTF(killed ? ": Spark killed its task" : truncate(LocalLauncher.lastLine(output)));
            out.flush();
            if (code != 0) {
                throw new IllegalStateException("Tessera worker rank " + rank + " (pid " + worker.pid() + ") exited"
                        + " with code " + code + "; its last lines:\n" + lastLines(output));
            }
            return code;
        } finally {
            AtomicFiles.deleteRecursively(logDir);
        }
    }

    /**
     * The jars this class was loaded from (the application's, as spark-submit handed them to this executor);
     * this JVM's class path where no class loader lists them (a test running Spark in-process).
     */
    private static String workerClassPath() {
        Set<String> entries = new LinkedHashSet<>();
        for (ClassLoader l = BarrierWorkerTask.class.getClassLoader(); l != null; l = l.getParent()) {
            if (l instanceof URLClassLoader u) {
                for (URL url : u.getURLs()) {
                    if ("file".equals(url.getProtocol())) {
                        try {
                            entries.add(new File(url.toURI()).getPath());
                        } catch (URISyntaxException e) {
                            entries.add(url.getPath());
                        }
                    }
                }
            }
        }
        return entries.isEmpty() ? System.getProperty("java.class.path") : String.join(File.pathSeparator, entries);
    }

    private static String lastLines(String output) {
        List<String> lines = output.strip().lines().toList();
        return String.join("\n", lines.subList(Math.max(0, lines.size() - LAST_LINES), lines.size()));
    }

    /** writeUTF takes at most 64 KiB. */
    private static String truncate(String s) {
        return s.length() > 4000 ? s.substring(0, 4000) + "..." : s;
    }
}
