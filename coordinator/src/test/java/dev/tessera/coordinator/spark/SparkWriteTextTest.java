package dev.tessera.coordinator.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** A Dataset's rows become the text file a job trains on with {@code data.source: text}. */
@Timeout(120)
class SparkWriteTextTest {

    @TempDir
    Path tmp;

    @Test
    void aDatasetIsWrittenWholeAsOneLinePerRow() throws Exception {
        Path file = tmp.resolve("data").resolve("corpus.txt");
        Path log = tmp.resolve("spark.log");
        // Spark's jars first, so that its own library versions win; then Tessera's classes and jars.
        List<String> command = new ArrayList<>(SparkProcesses.sparkJava(List.of("-Xmx512m"),
                WriteTextMain.class.getName()));
        int cp = command.indexOf("-cp") + 1;
        command.set(cp, command.get(cp) + ":target/classes:target/test-classes:"
                + Files.readString(SparkProcesses.RUNTIME_CLASSPATH).strip());
        command.add(file.toString());
        Process p = SparkProcesses.start(command, log, Path.of("").toAbsolutePath());
        try {
            assertTrue(p.waitFor(90, TimeUnit.SECONDS), Files.readString(log));
            assertEquals(0, p.exitValue(), Files.readString(log));
        } finally {
            SparkProcesses.stop(p);
        }
        List<String> lines = Files.readAllLines(file);
        assertEquals(5, lines.size(), lines.toString());
        assertEquals(List.of("fifth line", "first line", "fourth line", "second line", "third line"),
                lines.stream().sorted().toList());
        try (Stream<Path> siblings = Files.list(file.getParent())) {
            assertEquals(List.of(file), siblings.toList(), "a temporary file was left beside the text");
        }
    }
}
