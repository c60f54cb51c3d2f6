package dev.tessera.coordinator.cli;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BenchCommCommandTest {

    @Test
    void oneRankIsABadInput() {
        CliRunner r = CliRunner.run("bench", "comm", "--ranks", "1");
        assertEquals(2, r.exitCode(), r.err());
        assertTrue(r.err().contains("--ranks"), r.err());
    }

    @Test
    void smallRunPrintsJsonLines() {
        CliRunner r = CliRunner.run("bench", "comm", "--ranks", "2", "--max-bytes", "4096", "--json");
        assertEquals(0, r.exitCode(), r.err() + r.out());
        List<String> lines = r.out().lines().toList();
        for (String op : List.of("all_reduce", "reduce_scatter", "all_gather", "all_to_all")) {
            assertTrue(lines.stream().anyMatch(l -> l.startsWith("{\"op\":\"" + op + "\",\"bytes\":4096,\"ranks\":2,"
                    + "\"transport\":\"ipc\",\"latency_us\":") && l.contains("\"busbw_gbps\":")), r.out());
        }
        assertTrue(lines.get(lines.size() - 1).startsWith("{\"memcpy_gbps\":"), r.out());
    }
}
