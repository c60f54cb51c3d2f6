package dev.tessera.coordinator.spark;

import dev.tessera.coordinator.launch.WorkerState;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.util.List;
import java.util.Map;

/**
 * The driver's side of one barrier task's {@link LaunchChannel}: where the task runs, and what it has said of its
 * worker. A reader thread takes the task's reports as they come; a connection that ends without an exit report
 * means the task (or its executor) is gone.
 */
final class TaskConnection implements AutoCloseable {

    final int rank;
    final String machine;
    final String address;
    private final Socket socket;
    private final DataInputStream in;
    private final DataOutputStream out;
    private long pid = -1;
    private WorkerState exited;

    TaskConnection(int rank, String machine, String address, Socket socket, DataInputStream in,
                   DataOutputStream out) {
        this.rank = rank;
        this.machine = machine;
        this.address = address;
        this.socket = socket;
        this.in = in;
        this.out = out;
    }

    /** Sends the start message and begins reading the task's reports. */
    void start(List<String> jvmFlags, List<String> args, Map<String, String> env) throws IOException {
        synchronized (out) {
            out.writeByte(LaunchChannel.START);
            LaunchChannel.writeList(out, jvmFlags);
            LaunchChannel.writeList(out, args);
            LaunchChannel.writeMap(out, env);
            out.flush();
        }
        Thread reader = new Thread(this::readReports, "tessera-spark-task-" + rank);
        reader.setDaemon(true);
        reader.start();
    }

    private void readReports() {
        try {
            while (true) {
                byte type = in.readByte();
                if (type == LaunchChannel.PID) {
                    long p = in.readLong();
                    synchronized (this) {
                        pid = p;
                    }
                } else if (type == LaunchChannel.EXIT) {
                    int code = in.readInt();
                    String lastWords = in.readUTF();
                    ended(WorkerState.exited(code, lastWords));
                    return;
                } else {
                    throw new IOException("unknown report type " + type);
                }
            }
        } catch (IOException e) {
            ended(WorkerState.exited(-1, ": its Spark task ended without a report (executor lost or task"
                    + " killed: " + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage()) + ")"));
        }
    }

    private synchronized void ended(WorkerState state) {
        if (exited == null) {
            exited = state;
        }
        notifyAll();
    }

    synchronized WorkerState state() {
        return exited != null ? exited : WorkerState.RUNNING;
    }

    synchronized String describe() {
        return "worker rank " + rank + " (Spark barrier task" + (pid < 0 ? "" : ", pid " + pid) + " on "
                + machine.replaceFirst("/.*", "") + " at " + address + ")";
    }

    /** Waits until the task reported its worker's exit or hung up, at most until {@code deadlineNanos}. */
    synchronized void awaitEnd(long deadlineNanos) throws InterruptedException {
        while (exited == null) {
            long left = deadlineNanos - System.nanoTime();
            if (left <= 0) {
                return;
            }
            wait(Math.max(1, left / 1_000_000));
        }
    }

    /** Hanging up tells the task to end its worker. */
    @Override
    public void close() {
        try {
            socket.close();
        } catch (IOException e) {
            // closed already
        }
    }
}
