package dev.tessera.comm;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Communicators of several ranks in this JVM on one real media driver, for tests of what runs on top of them (comm's
 * own, and worker's through comm's test jar). {@link #close()} closes the communicators, then the driver, which
 * deletes its directory.
 */
public final class InProcessComms implements AutoCloseable {

    private final MediaDriverHost driver;
    private final Communicator[] comms;

    private InProcessComms(MediaDriverHost driver, Communicator[] comms) {
        this.driver = driver;
        this.comms = comms;
    }

    /**
     * {@code ranks} communicators of job {@code job}, listening on consecutive ports from {@code basePort}, connected
     * to each other (each rank connects on its own thread, as separate processes would).
     */
    public static InProcessComms connect(String job, int ranks, int basePort) throws Exception {
        String dir = MediaDriverHost.directoryFor(job, "host");
        MediaDriverHost driver = MediaDriverHost.launch(dir, CommConfig.MAX_MTU, 1 << 20);
        Communicator[] comms = new Communicator[ranks];
        try {
            CommConfig config = CommConfig.defaults(job, "token").withDriver(DriverMode.SHARED_PER_HOST, dir)
                    .withDeadlineMs(10_000);
            StaticPeerDirectory peers = StaticPeerDirectory.localhost(ranks, basePort);
            List<CompletableFuture<Communicator>> connecting = new ArrayList<>();
            for (int r = 0; r < ranks; r++) {
                int rank = r;
                connecting.add(CompletableFuture.supplyAsync(() -> Communicator.connect(config, peers, rank)));
            }
            for (int r = 0; r < ranks; r++) {
                comms[r] = connecting.get(r).get(30, TimeUnit.SECONDS);
            }
            return new InProcessComms(driver, comms);
        } catch (Exception | Error e) {
            new InProcessComms(driver, comms).close();
            throw e;
        }
    }

    /** Rank {@code r}'s communicator. */
    public Communicator get(int r) {
        return comms[r];
    }

    public int size() {
        return comms.length;
    }

    public MediaDriverHost driver() {
        return driver;
    }

    /** The driver's directory, which {@link #close()} deletes. */
    public Path directory() {
        return Path.of(driver.aeronDirectoryName());
    }

    @Override
    public void close() {
        for (Communicator c : comms) {
            if (c != null) {
                c.close();
            }
        }
        driver.close();
    }
}
