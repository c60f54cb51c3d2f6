package dev.tessera.coordinator.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A rate-limited host really is: 16 MB sent from a worker namespace to the coordinator's address arrive no faster
 * than the link's 100 Mbit/s (they would cross a bridge at gigabytes a second), and closing removes the namespaces.
 */
@Timeout(120)
class NamespaceHostsTest {

    private static final long BYTES = 16L << 20;

    @Test
    void aLimitedLinkCarriesNoMoreThanItsRateAndClosingRemovesTheHosts() throws Exception {
        Optional<String> unavailable = NamespaceHosts.unavailableReason();
        assumeTrue(unavailable.isEmpty(), () -> unavailable.orElseThrow());
        String namespace;
        try (NamespaceHosts hosts = NamespaceHosts.create(1, "100mbit");
             ServerSocket server = new ServerSocket(0, 1, InetAddress.getByName(hosts.coordinatorAddress()))) {
            namespace = hosts.namespace(0);
            Process sender = new ProcessBuilder("ip", "netns", "exec", namespace, "bash", "-c",
                    "head -c " + BYTES + " /dev/zero > /dev/tcp/" + hosts.coordinatorAddress() + "/"
                            + server.getLocalPort()).redirectErrorStream(true).start();
            long received = 0;
            long start;
            try (Socket s = server.accept(); InputStream in = s.getInputStream()) {
                byte[] chunk = new byte[1 << 16];
                int n = in.read(chunk);
                start = System.nanoTime(); // from the first bytes: the bucket's first burst is not the rate
                received = Math.max(0, n);
                while ((n = in.read(chunk)) >= 0) {
                    received += n;
                }
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            assertTrue(sender.waitFor(30, TimeUnit.SECONDS), "the sender did not finish");
            assertEquals(BYTES, received);
            double megabitsPerSecond = received * 8 / seconds / 1e6;
            System.out.printf("16 MB over a 100mbit link in %.2f s: %.1f Mbit/s%n", seconds, megabitsPerSecond);
            // 64 KB of burst at most beyond the rate; a machine too busy to drain the socket only lowers this.
            assertTrue(megabitsPerSecond <= 100 * 1.05, megabitsPerSecond + " Mbit/s over a 100 Mbit/s link");
        }
        Process list = new ProcessBuilder("ip", "netns", "list").redirectErrorStream(true).start();
        String left = new String(list.getInputStream().readAllBytes());
        list.waitFor();
        assertFalse(left.contains(namespace), "namespace " + namespace + " outlived close(): " + left);
    }
}
