package dev.tessera.worker.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.comm.ChildJvm;
import dev.tessera.comm.CommConfig;
import dev.tessera.comm.MediaDriverHost;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A float32 buffer of 640 M elements (2.56 GB) through an all-reduce between two worker processes and through a
 * checkpoint round trip ({@link BeyondTwoGibRankMain}). It needs about 8 GB of memory and a few minutes, so it runs
 * only in the {@code large} profile: {@code mvn -B -Plarge -pl worker -am test -Dtest=BeyondTwoGibProcessTest
 * -Dsurefire.failIfNoSpecifiedTests=false}.
 */
@Tag("large")
class BeyondTwoGibProcessTest {

    @TempDir
    Path dir;

    @Test
    void aBufferOf640MillionFloatsIsAllReducedBetweenTwoProcessesAndRoundTripsThroughACheckpoint() throws Exception {
        assertTrue(BeyondTwoGibRankMain.ELEMENTS >= 600_000_000L);
        String jobId = "beyond2g" + ProcessHandle.current().pid();
        int basePort = 46000 + (int) (ProcessHandle.current().pid() % 500) * 4;
        List<ChildJvm> ranks = new ArrayList<>();
        try (MediaDriverHost driver = MediaDriverHost.launch(MediaDriverHost.directoryFor(jobId, "host"),
                CommConfig.MAX_MTU, 16 << 20)) {
            String aeronDir = MediaDriverHost.directoryFor(jobId, "host");
            for (int r = 0; r < 2; r++) {
                ranks.add(BeyondTwoGibRankMain.start(r, 2, aeronDir, jobId, basePort, dir));
            }
            for (ChildJvm rank : ranks) {
                int code = rank.waitFor(600_000);
                String out = rank.output();
                System.out.println("--- " + rank.name() + "\n" + out.strip());
                assertEquals(0, code, () -> rank.name() + " exited " + code + ":\n" + out);
                assertTrue(out.contains("RESULT OK"), out);
            }
            assertTrue(ranks.get(0).output().contains("checkpoint round trip: all 640000003 elements"));
        } finally {
            for (ChildJvm rank : ranks) {
                rank.process().destroyForcibly().waitFor();
            }
        }
    }
}
