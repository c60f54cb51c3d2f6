package dev.tessera.worker.io;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AtomicFilesTest {

    @TempDir
    Path dir;

    @Test
    void replacesContentAndLeavesNoTemporaryFiles() throws IOException {
        Path target = dir.resolve("out/summary.json");
        AtomicFiles.writeString(target, "{\"loss\": 1}");
        AtomicFiles.writeString(target, "{\"loss\": 0.5}");
        assertEquals("{\"loss\": 0.5}", Files.readString(target));
        try (Stream<Path> list = Files.list(target.getParent())) {
            assertEquals(List.of("summary.json"), list.map(p -> p.getFileName().toString()).collect(Collectors.toList()));
        }
    }
}
