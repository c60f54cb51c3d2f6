package dev.tessera.coordinator;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.comm.CommConfig;
import dev.tessera.comm.Communicator;
import dev.tessera.comm.MediaDriverHost;
import io.aeron.Aeron;
import io.aeron.ExclusivePublication;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.status.CountersReader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 12's campaign against a running dp=2 job: at least 10,000 hostile frames on the control streams of both
 * workers and the coordinator, over IPC (an Aeron client on the job's own driver) and over UDP (publications from
 * a separate driver to the ranks' endpoints, plus raw datagrams). The job must finish with the losses of an
 * undisturbed run of the same config, bit for bit, and every frame must be accounted for in the ranks' drop and
 * rejected-handshake counters (Aeron counters, read from the job's driver directory).
 */
@Timeout(600)
class ControlStreamFuzzTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int FRAMES = 10_500;
    private static final int BATCH = 1_750;
    /**
     * The job must outlast the attack: the coordinator drains at most 8 control fragments per 5 ms poll, so its
     * 3,500 frames take seconds. 100 steps (about 4 s on a quiet machine) lost that race once; 400 do not.
     */
    private static final int STEPS = 400;
    private static final long DEADLINE_NS = 120_000_000_000L;

    @TempDir
    Path tmp;

    @Test
    void ipcControlStreamsSurviveTheCampaign() throws Exception {
        campaign("ipc");
    }

    @Test
    void udpControlStreamsSurviveTheCampaign() throws Exception {
        campaign("udp");
    }

    private void campaign(String transport) throws Exception {
        List<String> extra = List.of("--set", "launch.transport=" + transport);
        Path quiet = tmp.resolve(transport + "-undisturbed");
        ClusterTrainingTest.Run undisturbed = ClusterTrainingTest.run(job(quiet, extra));
        assertEquals(0, undisturbed.code(), undisturbed.err());

        Path attacked = tmp.resolve(transport + "-attacked");
        CompletableFuture<ClusterTrainingTest.Run> job = CompletableFuture.supplyAsync(
                () -> ClusterTrainingTest.run(job(attacked, extra)));
        String report = null;
        try {
            report = attack(transport, attacked, job);
        } finally {
            if (report == null && !job.isDone()) { // the attack failed: end the job so it cannot disturb the next test
                ClusterTrainingTest.workers().forEach(ProcessHandle::destroyForcibly);
                job.get();
            }
        }
        ClusterTrainingTest.Run result = job.get();
        assertEquals(0, result.code(), result.err());
        assertEquals(figures(quiet), figures(attacked), "the attacked run's losses differ from the undisturbed run's");
        System.out.println("campaign over " + transport + ": " + report);
        ClusterTrainingTest.assertNothingLeft(result.jobIds());
    }

    private static List<String> job(Path out, List<String> extra) {
        return ClusterTrainingTest.job(out, 2, STEPS, extra.toArray(String[]::new));
    }

    /** Sends the frames once the job trains (its handshake done), and waits until every rank has counted them. */
    private String attack(String transport, Path run, CompletableFuture<?> job) throws Exception {
        long deadline = System.nanoTime() + DEADLINE_NS;
        Path metrics = run.resolve("metrics.jsonl");
        while (!(Files.exists(metrics) && Files.readAllLines(metrics).size() >= 1)) {
            assertTrue(System.nanoTime() < deadline && !job.isDone(), "the job never reached its first step");
            Thread.sleep(20);
        }
        List<String> jobIds = ClusterTrainingTest.jobIds(run);
        assertEquals(1, jobIds.size(), "job ids of " + run + ": " + jobIds);
        String jobId = jobIds.get(0);
        String jobDir = MediaDriverHost.directoryFor(jobId, "host");
        int aeronPort = ClusterTrainingTest.workerPort(jobId, "aeron-port") // picked at launch: ask a worker
                .orElseThrow(() -> new AssertionError("no worker of " + jobId + " names its --aeron-port"));
        boolean udp = transport.equals("udp");
        MediaDriverHost ownDriver = udp ? MediaDriverHost.launch(MediaDriverHost.directoryFor(
                "fuzz" + ProcessHandle.current().pid(), "udp"), CommConfig.MAX_MTU, 1 << 20) : null;
        try (Aeron jobClient = Aeron.connect(new Aeron.Context().aeronDirectoryName(jobDir));
             Aeron sender = udp ? Aeron.connect(new Aeron.Context().aeronDirectoryName(ownDriver.aeronDirectoryName()))
                     : null) {
            Aeron from = udp ? sender : jobClient;
            int ranks = 3; // two workers and the coordinator (rank 2)
            long[] sent = new long[ranks];
            long[] before = new long[ranks];
            for (int r = 0; r < ranks; r++) {
                before[r] = survived(jobClient.countersReader(), jobId, r);
            }
            HostileFrames frames = new HostileFrames(transport.hashCode(), jobId);
            UnsafeBuffer buffer = new UnsafeBuffer(new byte[2 * dev.tessera.comm.control.ControlCodec.MAX_MESSAGE_BYTES]);
            SplittableRandom sessions = new SplittableRandom(99);
            // A new publication, with a session id of the attacker's choosing, every BATCH frames per rank. All stay
            // open until the ranks have counted every frame: a closed publication's last frames may never arrive.
            List<ExclusivePublication> open = new ArrayList<>();
            long total = 0;
            try {
                while (total < FRAMES) {
                    for (int r = 0; r < ranks; r++) {
                        String channel = (udp ? "aeron:udp?endpoint=127.0.0.1:" + (aeronPort + r) + "|"
                                : "aeron:ipc?") + "mtu=" + CommConfig.MAX_MTU + "|term-length=" + (1 << 20)
                                + "|session-id=" + sessions.nextInt();
                        ExclusivePublication pub = from.addExclusivePublication(channel,
                                Communicator.controlStreamId(r));
                        open.add(pub);
                        awaitConnected(pub, deadline, job);
                        for (int i = 0; i < BATCH; i++) {
                            int length = frames.next(buffer);
                            while (pub.offer(buffer, 0, length) < 0) {
                                assertTrue(System.nanoTime() < deadline && !job.isDone(),
                                        "rank " + r + " stopped taking frames");
                                Thread.yield();
                            }
                            sent[r]++;
                            total++;
                        }
                    }
                }
                for (int r = 0; r < ranks; r++) {
                    awaitCounted(jobClient.countersReader(), jobId, r, before[r] + sent[r], deadline, job);
                }
            } finally {
                open.forEach(ExclusivePublication::close);
            }
            long raw = udp ? rawDatagrams(aeronPort, ranks) : 0;
            StringBuilder report = new StringBuilder(total + " frames (" + frames.describe() + ")");
            for (int r = 0; r < ranks; r++) {
                long counted = survived(jobClient.countersReader(), jobId, r) - before[r];
                assertEquals(sent[r], counted, "rank " + r + ": frames sent vs dropped + rejected");
                report.append("; rank ").append(r).append(": ").append(sent[r]).append(" sent, ")
                        .append(counter(jobClient.countersReader(), Communicator.DROPPED_CONTROL_FRAMES_TYPE_ID, jobId, r))
                        .append(" dropped, ")
                        .append(counter(jobClient.countersReader(), Communicator.REJECTED_HANDSHAKES_TYPE_ID, jobId, r))
                        .append(" Hellos rejected");
            }
            if (udp) {
                report.append("; plus ").append(raw).append(" raw datagrams (refused by Aeron itself)");
            }
            return report.toString();
        } finally {
            if (ownDriver != null) {
                ownDriver.close();
            }
        }
    }

    /** Garbage and Aeron-looking data headers with forged session ids, straight to the ranks' UDP ports. */
    private static long rawDatagrams(int aeronPort, int ranks) throws IOException {
        SplittableRandom random = new SplittableRandom(5);
        long sent = 0;
        try (DatagramSocket socket = new DatagramSocket()) {
            for (int i = 0; i < 1_500; i++) {
                byte[] b = new byte[1 + random.nextInt(1400)];
                for (int j = 0; j < b.length; j++) {
                    b[j] = (byte) random.nextInt(256);
                }
                if (b.length >= 32 && random.nextBoolean()) { // frame length, version, flags, type DATA, ...
                    UnsafeBuffer h = new UnsafeBuffer(b);
                    h.putInt(0, b.length, java.nio.ByteOrder.LITTLE_ENDIAN);
                    h.putByte(4, (byte) 0);
                    h.putShort(6, (short) 1, java.nio.ByteOrder.LITTLE_ENDIAN);
                    h.putInt(12, random.nextInt(), java.nio.ByteOrder.LITTLE_ENDIAN); // session id
                    h.putInt(16, Communicator.controlStreamId(i % ranks), java.nio.ByteOrder.LITTLE_ENDIAN);
                }
                socket.send(new DatagramPacket(b, b.length, InetAddress.getLoopbackAddress(), aeronPort + i % ranks));
                sent++;
            }
        }
        return sent;
    }

    private static void awaitConnected(ExclusivePublication pub, long deadline, CompletableFuture<?> job)
            throws InterruptedException {
        while (!pub.isConnected()) {
            assertTrue(System.nanoTime() < deadline && !job.isDone(), "no subscriber on " + pub.channel()
                    + " stream " + pub.streamId());
            Thread.sleep(1);
        }
    }

    private static void awaitCounted(CountersReader counters, String jobId, int rank, long expected, long deadline,
                                     CompletableFuture<?> job) throws InterruptedException {
        while (survived(counters, jobId, rank) < expected) {
            assertTrue(System.nanoTime() < deadline && !job.isDone(), "rank " + rank + " counted "
                    + survived(counters, jobId, rank) + " of " + expected + " frames");
            Thread.sleep(1);
        }
    }

    /** Frames rank {@code rank} dropped or refused as Hellos: every hostile frame must end in one of the two. */
    private static long survived(CountersReader counters, String jobId, int rank) {
        return counter(counters, Communicator.DROPPED_CONTROL_FRAMES_TYPE_ID, jobId, rank)
                + counter(counters, Communicator.REJECTED_HANDSHAKES_TYPE_ID, jobId, rank);
    }

    private static long counter(CountersReader counters, int typeId, String jobId, int rank) {
        String suffix = ": job " + jobId + " rank " + rank;
        long[] value = {-1};
        counters.forEach((id, type, key, label) -> {
            if (type == typeId && label.endsWith(suffix)) {
                value[0] = counters.getCounterValue(id);
            }
        });
        assertTrue(value[0] >= 0, "no counter of type " + typeId + " for" + suffix);
        return value[0];
    }

    /** Everything deterministic in metrics.jsonl: the losses, gradient norms and learning rates of every step. */
    private static List<String> figures(Path run) throws IOException {
        List<String> out = new ArrayList<>();
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode n = JSON.readTree(line);
            StringBuilder s = new StringBuilder("step " + n.get("step").asText());
            for (String field : List.of("loss", "aux_loss", "lr", "grad_norm", "eval_loss")) {
                if (n.has(field)) {
                    s.append(' ').append(field).append('=').append(n.get(field).asText());
                }
            }
            out.add(s.toString());
        }
        assertEquals(STEPS, out.stream().filter(l -> l.contains(" loss=")).count(), run + ": " + out);
        return out;
    }
}
