package dev.tessera.coordinator.launch;

import dev.tessera.comm.UserInputException;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * The distribution a remote host runs: the jars of {@code lib/}. A host's copy is checked against this machine's by
 * a manifest (each jar's name and SHA-256, as {@code sha256sum} prints them), and replaced whole, by tar over ssh,
 * only when it differs: an unchanged cluster starts without copying anything.
 */
public final class Distribution {

    private static final long CHECK_TIMEOUT_S = 120;
    private static final long COPY_TIMEOUT_S = 600;

    private final Path root;
    private final String manifest;

    private Distribution(Path root, String manifest) {
        this.root = root;
        this.manifest = manifest;
    }

    /** The distribution in {@code root} (which holds {@code lib/*.jar}); a user error where there is none. */
    public static Distribution at(Path root, String origin) {
        Path lib = root.resolve("lib");
        if (!Files.isDirectory(lib)) {
            throw new UserInputException(origin + ": " + root + " holds no lib/ folder; build the distribution"
                    + " (mvn package, which ./tessera does) or point distribution at one");
        }
        return new Distribution(root, manifestOf(lib));
    }

    /** "sha256  name.jar" for each jar of {@code lib}, sorted by name: what {@code sha256sum *.jar} prints. */
    static String manifestOf(Path lib) {
        try (Stream<Path> files = Files.list(lib)) {
            return files.filter(f -> f.getFileName().toString().endsWith(".jar")).sorted()
                    .map(f -> sha256(f) + "  " + f.getFileName() + "\n").collect(Collectors.joining());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + lib, e);
        }
    }

    /** Whether {@code host}'s copy matches, and a copy onto it when not; fails naming the host otherwise. */
    public void ensureOn(ClusterHost host, PrintStream log) {
        if (manifestOn(host).equals(manifest)) {
            log.println("distribution: " + host.describe() + " has " + host.distribution() + " up to date");
            return;
        }
        log.println("distribution: copying " + root + "/lib to " + host.describe() + ":" + host.distribution());
        String dir = HostShell.quote(host.distribution());
        String unpack = "mkdir -p " + dir + " && rm -rf " + dir + "/lib && tar -C " + dir + " -xf -";
        HostShell.Result copied = HostShell.run(List.of(new ProcessBuilder("tar", "-C", root.toString(), "-cf", "-",
                "lib"), new ProcessBuilder(HostShell.command(host, unpack))), COPY_TIMEOUT_S);
        if (!copied.ok()) {
            throw new IllegalStateException("cannot copy the distribution to " + host.describe() + ": "
                    + copied.output().strip());
        }
        if (!manifestOn(host).equals(manifest)) {
            throw new IllegalStateException("the distribution on " + host.describe() + " differs from " + root
                    + " even after copying it to " + host.distribution());
        }
    }

    private String manifestOn(ClusterHost host) {
        HostShell.Result r = HostShell.run(host, "cd " + HostShell.quote(host.distribution() + "/lib")
                + " 2>/dev/null || exit 0; LC_ALL=C sha256sum -- *.jar 2>/dev/null | LC_ALL=C sort -k 2",
                CHECK_TIMEOUT_S);
        if (r.code() == 255 || r.code() == -1) {
            throw new IllegalStateException("cannot reach " + host.describe() + " over ssh: " + r.output().strip());
        }
        return r.output();
    }

    private static String sha256(Path file) {
        try (InputStream in = new DigestInputStream(Files.newInputStream(file), MessageDigest.getInstance("SHA-256"))) {
            byte[] buffer = new byte[1 << 16];
            DigestInputStream digest = (DigestInputStream) in;
            while (digest.read(buffer) >= 0) {
                // reading is digesting
            }
            return HexFormat.of().formatHex(digest.getMessageDigest().digest());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
