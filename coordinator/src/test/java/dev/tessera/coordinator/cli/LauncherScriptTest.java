package dev.tessera.coordinator.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code tessera} launcher script, run against a stand-in {@code java} that prints what the real JVM prints:
 * the incubator notice first on stderr, then the program's output and exit code.
 */
class LauncherScriptTest {

    @TempDir
    Path tmp;

    private static Path script() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            if (Files.isRegularFile(dir.resolve("tessera")) && Files.isRegularFile(dir.resolve("pom.xml"))) {
                return dir.resolve("tessera");
            }
        }
        throw new AssertionError("no tessera launcher above " + Path.of("").toAbsolutePath());
    }

    private static void executable(Path file, String content) throws IOException {
        Files.writeString(file, content);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    @Test
    void stderrStartsWithTheLineThatMattersAndTheExitCodeIsJavas() throws Exception {
        Path root = Files.createDirectories(tmp.resolve("root"));
        Files.copy(script(), root.resolve("tessera"));
        Files.writeString(root.resolve("pom.xml"), "<project><properties><tessera.jvm.flags>--add-modules "
                + "jdk.incubator.vector</tessera.jvm.flags></properties></project>\n");
        Path built = Files.createDirectories(root.resolve("deploy/target/tessera")).resolve(".built");
        Files.writeString(built, "");
        Path bin = Files.createDirectories(tmp.resolve("bin"));
        executable(bin.resolve("mvn"), "#!/bin/sh\nexit 0\n");
        executable(bin.resolve("java"), """
                #!/usr/bin/env bash
                if [[ "$1" == -XshowSettings:properties ]]; then
                  echo "    java.specification.version = 17" >&2; exit 0
                fi
                echo "WARNING: Using incubator modules: jdk.incubator.vector, jdk.incubator.foreign" >&2
                echo "tessera: data.path x.txt does not exist" >&2
                echo "WARNING: Using incubator modules: a later line with these words is the program's" >&2
                echo "stdout line"
                exit 2
                """);
        ProcessBuilder pb = new ProcessBuilder("bash", root.resolve("tessera").toString(), "train");
        pb.environment().put("PATH", bin + ":" + System.getenv("PATH"));
        Process p = pb.start();
        CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> read(p.getErrorStream()));
        String out = read(p.getInputStream());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the launcher did not finish");

        assertEquals(2, p.exitValue());
        assertEquals("stdout line\n", out);
        assertEquals("tessera: data.path x.txt does not exist\n"
                + "WARNING: Using incubator modules: a later line with these words is the program's\n",
                err.get(60, TimeUnit.SECONDS));
    }

    private static String read(java.io.InputStream in) {
        try (in) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
