package dev.tessera.comm;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The worker JVMs of one comm multi-process test ({@link ChildJvm}s), their logs in one temporary folder.
 * {@link #close()} kills every process it started and deletes the logs; the coordinator's launchers, which also
 * sweep and supervise, are out of comm's reach.
 */
final class TestJvms implements AutoCloseable {

    private final List<String> jvmArgs;
    private final Path logDir;
    private final List<ChildJvm> children = new ArrayList<>();

    TestJvms(List<String> extraJvmArgs) {
        this.jvmArgs = List.copyOf(extraJvmArgs);
        try {
            this.logDir = Files.createTempDirectory("tessera-commtest-");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    synchronized ChildJvm start(String name, String mainClass, List<String> args, Map<String, String> env) {
        ChildJvm c = ChildJvm.start(name, List.of(), jvmArgs, mainClass, args, env, logDir.resolve(name + ".log"));
        children.add(c);
        return c;
    }

    synchronized boolean anyAlive() {
        return children.stream().anyMatch(c -> c.process().isAlive());
    }

    @Override
    public synchronized void close() {
        for (ChildJvm c : children) {
            try {
                c.process().destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        try (Stream<Path> walk = Files.walk(logDir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + logDir, e);
        }
    }
}
