package dev.tessera.coordinator.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.comm.UserInputException;
import dev.tessera.coordinator.launch.ClusterHost;
import dev.tessera.worker.job.JobConfig;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ClusterFileTest {

    private static final Path SAMPLES = Path.of("..", "deploy", "clusters");

    @TempDir
    Path tmp;

    /** Every sample in deploy/clusters parses, its ~/ keys in a home of this test's. */
    @Test
    void everySampleParses() throws IOException {
        Path home = tmp.resolve("home");
        Files.createDirectories(home.resolve(".ssh"));
        Files.writeString(home.resolve(".ssh/id_ed25519"), "not a real key: parsing only checks that it exists\n");
        List<Path> samples;
        try (Stream<Path> files = Files.list(SAMPLES)) {
            samples = files.filter(f -> f.toString().endsWith(".yaml")).sorted().toList();
        }
        assertTrue(samples.size() >= 2, "samples in " + SAMPLES.toAbsolutePath() + ": " + samples);
        for (Path sample : samples) {
            ClusterFile cluster = ClusterFile.load(sample, home);
            JobConfig job = JobConfigLoader.load(JobConfig.defaults(), cluster.jobConfig().stream().toList(),
                    Stream.concat(cluster.jobSets().stream(), cluster.launchSets().stream()
                            .filter(o -> !o.key().equals("launch.bind_address"))) // 10.0.0.1 is not this host's
                            .toList());
            assertEquals(job.mesh().world(), cluster.workers(), sample + ": the job's world is the hosts' workers");
        }
    }

    @Test
    void readsHostsInOrderWithTheirLogins() throws IOException {
        Path key = Files.writeString(tmp.resolve("key"), "k");
        ClusterFile cluster = load("""
                coordinator: {address: 127.0.0.1}
                ports: {hazelcast: 5801, aeron: 40200}
                jvm_options: [-XX:+UseSerialGC]
                hosts:
                  here: {local: true, workers: 2}
                  b:
                    address: 198.18.3.4
                    workers: 3
                    ssh: {user: tess, key: key, port: 2222, options: [StrictHostKeyChecking=no]}
                    distribution: /opt/tessera
                job:
                  set: {mesh.dp: 5, train.steps: 3}
                """);
        List<ClusterHost> hosts = cluster.hosts();
        assertEquals(List.of("here", "b"), hosts.stream().map(ClusterHost::name).toList());
        assertTrue(hosts.get(0).local());
        assertEquals(new ClusterHost("b", "198.18.3.4", new ClusterHost.Ssh("tess", key, 2222,
                List.of("StrictHostKeyChecking=no")), 3, "/opt/tessera", "java"), hosts.get(1));
        assertEquals(5, cluster.workers());
        assertEquals(Map.of("mesh.dp", 5, "train.steps", 3), asMap(cluster.jobSets()));
        assertEquals(Map.of("launch.hazelcast_port", 5801, "launch.aeron_port", 40200, "launch.launcher", "cluster",
                "launch.bind_address", "127.0.0.1"), asMap(cluster.launchSets()));
        assertTrue(cluster.launchSets().get(0).origin().matches(".*cluster\\.yaml:2:\\d+"),
                cluster.launchSets().get(0).origin());
    }

    @Test
    void anUnknownKeyNamesItsLineAndTheClosestKey() {
        assertError("hosts:\n  b:\n    local: true\n    wokers: 2\n",
                "cluster.yaml:4:5: unknown key 'hosts.b.wokers' (did you mean 'hosts.b.workers'?); allowed keys in"
                        + " hosts.b: local, address, workers, ssh, distribution, java");
        assertError("hosts:\n  b: {local: true}\nport: {aeron: 1}\n", "cluster.yaml:3:1: unknown key 'port' (did you"
                + " mean 'ports'?)");
    }

    @Test
    void aMissingKeyFileNamesTheKey() {
        assertError("hosts:\n  b:\n    address: 198.18.3.4\n    ssh: {user: u, key: nowhere}\n"
                        + "    distribution: /opt/t\n",
                "cluster.yaml:4:20: hosts.b.ssh.key: " + tmp.resolve("nowhere") + " does not exist");
    }

    @Test
    void aBadAddressNamesTheKey() throws IOException {
        Files.writeString(tmp.resolve("key"), "k");
        assertError("hosts:\n  b:\n    address: 198.18.300.4\n    ssh: {user: u, key: key}\n"
                + "    distribution: /opt/t\n", "cluster.yaml:3:5: hosts.b.address: '198.18.300.4' is not a valid IPv4");
        assertError("hosts:\n  b:\n    address: host-b.example\n    ssh: {user: u, key: key}\n"
                + "    distribution: /opt/t\n", "hosts.b.address: 'host-b.example' is not a literal IPv4 or IPv6");
    }

    @Test
    void otherMistakesNameTheirKey() throws IOException {
        Files.writeString(tmp.resolve("key"), "k");
        assertError("job: {set: {mesh.dp: 2}}\n", "cluster.yaml: hosts: is required");
        assertError("hosts:\n  b: {address: 198.18.0.2}\n", "hosts.b.ssh: is required for a remote host");
        assertError("hosts:\n  b: {local: true, workers: 0}\n", "hosts.b.workers: must be an integer from 1 to 1024");
        assertError("hosts:\n  a: {local: true}\n  b: {local: true}\n", "hosts.b.local: only one host may be local");
        assertError("hosts:\n  b: {address: 198.18.0.2, ssh: {user: u, key: key}, distribution: opt}\n",
                "hosts.b.distribution: 'opt' must be an absolute path");
        assertError("hosts:\n  b: {local: true}\njob: {config: nope.yaml}\n", "job.config: " + tmp.resolve("nope.yaml")
                + " does not exist");
        assertError("hosts:\n  b: {local: true, ssh: {user: u}}\n", "hosts.b.ssh: is for remote hosts");
    }

    @Test
    void theJobMustHaveOneRankPerWorker() throws IOException {
        ClusterFile cluster = load("hosts:\n  here: {local: true, workers: 2}\n");
        JobConfig oneRank = JobConfigLoader.load(null, List.of("mesh.dp=1"));
        UserInputException e = assertThrows(UserInputException.class, () -> cluster.launchers(
                new PrintStream(OutputStream.nullOutputStream())).apply(oneRank));
        assertTrue(e.getMessage().contains("hosts run 2 workers but the job's mesh has 1 ranks"), e.getMessage());
    }

    private ClusterFile load(String yaml) throws IOException {
        return ClusterFile.load(Files.writeString(tmp.resolve("cluster.yaml"), yaml), tmp);
    }

    private void assertError(String yaml, String expected) {
        UserInputException e = assertThrows(UserInputException.class, () -> load(yaml));
        assertTrue(e.getMessage().contains(expected), () -> "'" + e.getMessage() + "' lacks '" + expected + "'");
        assertEquals(1, e.getMessage().lines().count(), e.getMessage());
    }

    private static Map<String, Object> asMap(List<ConfigOverride> overrides) {
        return overrides.stream().collect(Collectors.toMap(ConfigOverride::key, ConfigOverride::value));
    }
}
