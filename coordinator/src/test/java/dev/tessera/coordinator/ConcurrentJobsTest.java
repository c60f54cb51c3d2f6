package dev.tessera.coordinator;

import dev.tessera.coordinator.cli.Main;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two jobs started at the same moment on one machine, both with the default ports (launch.hazelcast_port and
 * launch.aeron_port 0: picked free at launch), both finish: neither needs a port that something else was given.
 */
@Timeout(600) // about 40 s on a quiet 2-core machine; 175 s was seen with another build running beside it
class ConcurrentJobsTest {

    private static final Pattern CLUSTER_LINE =
            Pattern.compile("(?m)^cluster: (\\S+), Hazelcast ports (\\d+)\\.\\.(\\d+), Aeron ports (\\d+)\\.\\.(\\d+)$");

    @TempDir
    Path tmp;

    private record Outcome(int code, String out, String err, Path dir) {
    }

    @Test
    void twoJobsWithDefaultPortsStartedTogetherBothFinish() throws Exception {
        int steps = 5;
        CyclicBarrier together = new CyclicBarrier(2);
        ExecutorService threads = Executors.newFixedThreadPool(2);
        List<Future<Outcome>> jobs = new ArrayList<>();
        try {
            for (String name : List.of("a", "b")) {
                List<String> args = ClusterSoakTest.tinyJob(tmp.resolve(name), 2, steps);
                jobs.add(threads.submit(() -> {
                    ByteArrayOutputStream out = new ByteArrayOutputStream();
                    ByteArrayOutputStream err = new ByteArrayOutputStream();
                    together.await(60, TimeUnit.SECONDS);
                    int code = Main.run(new PrintStream(out, true, StandardCharsets.UTF_8),
                            new PrintStream(err, true, StandardCharsets.UTF_8), args.toArray(String[]::new));
                    return new Outcome(code, out.toString(StandardCharsets.UTF_8),
                            err.toString(StandardCharsets.UTF_8), tmp.resolve(name));
                }));
            }
            List<int[]> ranges = new ArrayList<>();
            List<String> ids = new ArrayList<>();
            for (Future<Outcome> job : jobs) {
                Outcome o = job.get();
                assertEquals(0, o.code(), o.dir().getFileName() + ": " + o.err());
                assertEquals(steps, ClusterTrainingTest.losses(o.dir()).size(), "steps of " + o.dir());
                Matcher m = CLUSTER_LINE.matcher(o.out());
                assertTrue(m.find(), "no cluster line with picked ports in: " + o.out());
                ids.add(m.group(1));
                int[] r = {Integer.parseInt(m.group(2)), Integer.parseInt(m.group(3)), Integer.parseInt(m.group(4)),
                        Integer.parseInt(m.group(5))};
                assertEquals(3, r[1] - r[0] + 1, "world size + 1 Hazelcast ports");
                assertEquals(3, r[3] - r[2] + 1, "world size + 1 Aeron ports");
                ranges.add(r);
                ClusterTrainingTest.assertNothingLeft(ClusterTrainingTest.jobIds(o.dir()));
            }
            assertNotEquals(ids.get(0), ids.get(1));
            // Same seed and config: the two jobs train the same losses, untouched by each other.
            assertEquals(ClusterTrainingTest.losses(tmp.resolve("a")), ClusterTrainingTest.losses(tmp.resolve("b")));
            System.out.printf("two jobs at once: Hazelcast %d.. and %d.., Aeron %d.. and %d..%n", ranges.get(0)[0],
                    ranges.get(1)[0], ranges.get(0)[2], ranges.get(1)[2]);
        } finally {
            threads.shutdownNow();
        }
    }
}
