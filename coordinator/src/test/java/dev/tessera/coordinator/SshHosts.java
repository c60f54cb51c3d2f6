package dev.tessera.coordinator;

import dev.tessera.coordinator.launch.NamespaceHosts;
import dev.tessera.worker.io.AtomicFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Remote hosts for tests: {@link NamespaceHosts}' network namespaces, each running an OpenSSH server of its own
 * (Debian's openssh-server) that accepts one key pair made for the test, for root, on port 22 of the namespace's
 * address. {@link #close()} ends the servers and removes the namespaces and the keys, also when a test failed.
 */
final class SshHosts implements AutoCloseable {

    private static final Path SSHD = Path.of("/usr/sbin/sshd");

    private final NamespaceHosts hosts;
    private final Path dir;
    private final List<Process> servers = new ArrayList<>();

    private SshHosts(NamespaceHosts hosts, Path dir) {
        this.hosts = hosts;
        this.dir = dir;
    }

    /** {@code count} hosts with their keys and configs in {@code dir}, each answering ssh once this returns. */
    static SshHosts start(int count, Path dir) throws Exception {
        if (!Files.isExecutable(SSHD)) {
            throw new IllegalStateException(SSHD + " is missing: install openssh-server (apt-get install"
                    + " openssh-server; ./tessera test does it when run as root)");
        }
        Files.createDirectories(dir);
        Files.createDirectories(Path.of("/run/sshd")); // sshd's privilege separation folder
        keygen(dir.resolve("client_key"));
        Files.copy(dir.resolve("client_key.pub"), dir.resolve("authorized_keys"));
        SshHosts ssh = new SshHosts(NamespaceHosts.create(count, null), dir);
        try {
            for (int h = 0; h < count; h++) {
                ssh.startServer(h);
            }
            for (int h = 0; h < count; h++) {
                ssh.awaitListening(h);
            }
        } catch (Exception | Error e) {
            ssh.close();
            throw e;
        }
        return ssh;
    }

    private void startServer(int h) throws Exception {
        Path hostKey = dir.resolve("host_key_" + h);
        keygen(hostKey);
        Path config = Files.writeString(dir.resolve("sshd_config_" + h), String.join("\n",
                "ListenAddress " + address(h), "Port 22", "HostKey " + hostKey,
                "AuthorizedKeysFile " + dir.resolve("authorized_keys"), "PidFile none", "UsePAM no",
                "StrictModes no", "PermitRootLogin prohibit-password", "PasswordAuthentication no",
                "KbdInteractiveAuthentication no", "") );
        servers.add(new ProcessBuilder("ip", "netns", "exec", hosts.namespace(h), SSHD.toString(), "-D", "-e",
                "-f", config.toString()).redirectErrorStream(true)
                .redirectOutput(dir.resolve("sshd_" + h + ".log").toFile()).start());
    }

    private void awaitListening(int h) throws Exception {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(address(h), 22), 1000);
                return;
            } catch (IOException notYet) {
                if (!servers.get(h).isAlive() || System.nanoTime() > until) {
                    throw new IllegalStateException("sshd of host " + h + " at " + address(h) + " did not listen"
                            + " within 30 s: " + Files.readString(dir.resolve("sshd_" + h + ".log")));
                }
                Thread.sleep(50);
            }
        }
    }

    private static void keygen(Path key) throws Exception {
        Process p = new ProcessBuilder("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key.toString())
                .redirectErrorStream(true).start();
        if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
            p.destroyForcibly();
            throw new IllegalStateException("ssh-keygen for " + key + " failed: "
                    + new String(p.getInputStream().readAllBytes()));
        }
    }

    /** Host {@code h}'s address, where its sshd listens and its workers bind. */
    String address(int h) {
        return hosts.workerAddress(h);
    }

    /** This machine's address on the hosts' bridge: where the coordinator binds. */
    String coordinatorAddress() {
        return hosts.coordinatorAddress();
    }

    /** The private key every host accepts for root. */
    Path clientKey() {
        return dir.resolve("client_key");
    }

    /** Bytes the bridge received from host {@code h}. */
    long bytesFrom(int h) throws IOException {
        return hosts.bytesFrom(h);
    }

    @Override
    public void close() {
        for (Process server : servers) { // sessions still open end with their clients; the listener ends here
            server.destroy();
        }
        for (Process server : servers) {
            try {
                if (!server.waitFor(5, TimeUnit.SECONDS)) {
                    server.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        hosts.close();
        try {
            AtomicFiles.deleteRecursively(dir);
        } catch (UncheckedIOException e) {
            System.err.println("could not remove " + dir + ": " + e.getMessage());
        }
    }
}
