package dev.tessera.coordinator.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 12: a foreign program listening on the job's Hazelcast range hung the coordinator for 322 s, then it
 * failed with exit 1 and "Node failed to start!". A taken port is the user's to change: exit 2, one line.
 */
@Timeout(120)
class HazelcastPortInUseTest {

    @TempDir
    Path tmp;

    @Test
    void aPortOfTheRangeInUseExitsTwoNamingTheKeyAndThePort() throws Exception {
        try (ServerSocket squatter = new ServerSocket()) {
            squatter.bind(new InetSocketAddress("127.0.0.1", 6602)); // the range of dp=2 is 6600..6602
            CliRunner result = CliRunner.run("train", "--out", tmp.resolve("run").toString(),
                    "--set", "model.d_model=16", "--set", "model.n_layers=2", "--set", "model.n_heads=2",
                    "--set", "model.d_ff=32", "--set", "train.steps=2", "--set", "optimizer.warmup_steps=1",
                    "--set", "train.batch_size=2", "--set", "train.seq_len=16", "--set", "mesh.dp=2",
                    "--set", "launch.hazelcast_port=6600", "--set", "launch.aeron_port=42600");
            assertEquals(2, result.exitCode(), result.err());
            assertEquals(1, result.err().lines().count(), () -> "one line expected: " + result.err());
            String line = result.err().strip();
            assertTrue(line.startsWith("tessera: launch.hazelcast_port: port 6602 of the job's range 6600..6602 is"
                    + " already in use") && line.contains("set launch.hazelcast_port to the first of 3 free ports"),
                    line);
            assertFalse(line.contains("\tat "), "no stack trace");
        }
    }
}
