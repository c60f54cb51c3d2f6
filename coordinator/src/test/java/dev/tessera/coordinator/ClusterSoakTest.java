package dev.tessera.coordinator;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 12: on a loaded host (several JVMs starting, JIT-compiling and collecting garbage at once) live workers
 * were called dead. Three jobs start together beside 8 busy loops: none may fail, and the dp=4 job's losses are
 * those of the same job run alone, bit for bit. A stopped worker is still caught within 15 s under the same load.
 */
@Timeout(1200)
class ClusterSoakTest {

    private static final int BUSY_LOOPS = 8;

    @TempDir
    Path tmp;

    /** A model as small as TinyJob's: the point is the processes, not the arithmetic. */
    static List<String> tinyJob(Path out, int dp, int steps) {
        List<String> args = new ArrayList<>(List.of("train", "--out", out.toString()));
        for (String set : List.of("model.d_model=16", "model.n_layers=2", "model.n_heads=2", "model.d_ff=32",
                "model.n_experts=4", "model.top_k=2", "model.moe_every=2", "model.expert_d_ff=16",
                "train.steps=" + steps, "train.batch_size=4", "train.seq_len=16", "optimizer.warmup_steps=4",
                "eval.every=0", "checkpoint.every=0", "mesh.dp=" + dp)) {
            args.add("--set");
            args.add(set);
        }
        return args;
    }

    @Test
    void jobsOnALoadedHostRaiseNoFalseAlarmAndAStopIsStillCaught() throws Exception {
        Path alone = tmp.resolve("dp4-alone");
        ClusterTrainingTest.Run reference = ClusterTrainingTest.run(tinyJob(alone, 4, 300));
        assertEquals(0, reference.code(), reference.err());
        ClusterTrainingTest.assertNothingLeft(reference.jobIds());

        AtomicBoolean loading = new AtomicBoolean(true);
        List<Thread> busy = new ArrayList<>();
        for (int i = 0; i < BUSY_LOOPS; i++) {
            Thread t = new Thread(() -> {
                long x = 0;
                while (loading.get()) {
                    x = x * 6364136223846793005L + 1442695040888963407L;
                }
                if (x == 42) {
                    System.out.println(x); // keeps the loop from being optimised away
                }
            }, "soak-busy-" + i);
            t.setDaemon(true);
            t.start();
            busy.add(t);
        }
        try {
            Path loaded = tmp.resolve("dp4-loaded");
            // One thread per job: all three start at once, JIT-compiling and collecting garbage together.
            ExecutorService threads = Executors.newFixedThreadPool(3);
            List<Future<ClusterTrainingTest.Run>> jobs = List.of(
                    threads.submit(() -> ClusterTrainingTest.run(tinyJob(loaded, 4, 300))),
                    threads.submit(() -> ClusterTrainingTest.run(tinyJob(tmp.resolve("dp2-a"), 2, 300))),
                    threads.submit(() -> ClusterTrainingTest.run(tinyJob(tmp.resolve("dp2-b"), 2, 300))));
            threads.shutdown();
            int falseAlarms = 0;
            StringBuilder failures = new StringBuilder();
            for (Future<ClusterTrainingTest.Run> job : jobs) {
                ClusterTrainingTest.Run r = job.get();
                if (r.code() != 0) {
                    falseAlarms++;
                    failures.append(r.err());
                }
                ClusterTrainingTest.assertNothingLeft(r.jobIds());
            }
            System.out.println("soak: " + falseAlarms + " false alarms among 3 jobs under load");
            assertEquals(0, falseAlarms, failures.toString());
            Map<Long, Double> expected = ClusterTrainingTest.losses(alone);
            assertEquals(300, expected.size());
            assertEquals(expected, ClusterTrainingTest.losses(loaded), "dp=4 losses under load vs alone");

            String line = ClusterTrainingTest.assertFaultDetected(tmp.resolve("stopped"), "-STOP", 15);
            assertTrue(line.contains("is stopped (SIGSTOP?)"), line);
        } finally {
            loading.set(false);
            for (Thread t : busy) {
                t.join();
            }
        }
    }
}
