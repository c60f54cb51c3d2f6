package dev.tessera.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.coordinator.cli.Main;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code tessera launch} on a cluster file whose one host is this machine: its workers run as local processes. */
class LocalClusterLaunchTest {

    @TempDir
    Path tmp;

    @Test
    void aLocalHostRunsItsWorkersHereWithPrefixedLines() throws Exception {
        StringBuilder yaml = new StringBuilder("jvm_options: [-XX:+PrintCommandLineFlags]\n"
                + "hosts:\n  here: {local: true, workers: 2}\njob:\n  set:\n");
        for (String set : TinyJob.sets()) {
            String[] kv = set.split("=", 2);
            yaml.append("    ").append(kv[0]).append(": ").append(kv[0].equals("mesh.dp") ? "2" : kv[1]).append("\n");
        }
        Path cluster = Files.writeString(tmp.resolve("local.yaml"), yaml.toString());
        Path run = tmp.resolve("run");
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(new PrintStream(OutputStream.nullOutputStream()), new PrintStream(err, true,
                StandardCharsets.UTF_8), "launch", cluster.toString(), "--out", run.toString());
        String said = err.toString(StandardCharsets.UTF_8);
        assertEquals(0, code, said);
        assertTrue(said.contains("[rank 0@here] -XX:") && said.contains("[rank 1@here] -XX:"), said);
        Map<Long, Double> losses = ClusterTrainingTest.losses(run);
        assertEquals(8, losses.size(), losses.toString());
        List<String> jobIds = ClusterTrainingTest.jobIds(run);
        ClusterTrainingTest.assertNothingLeft(jobIds);
        assertTrue(Files.readString(run.resolve("config.yaml")).contains("launcher: cluster"));
    }
}
