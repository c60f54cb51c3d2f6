package dev.tessera.worker.run;

import dev.tessera.comm.DriverMode;
import dev.tessera.comm.Transport;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class WorkerArgsTest {

    @Test
    void aCommandLineReadsBackAsTheArgumentsItWasMadeFrom() {
        WorkerArgs args = new WorkerArgs("job-1", 1, 2, "ns-r1", 5701, "/dev/shm/tessera-job-1-r1", 40123, 60_000,
                Transport.AUTO, "198.18.4.3", List.of("198.18.4.2:5701", "198.18.4.3:5701", "198.18.4.1:5701"),
                DriverMode.PER_PROCESS);
        List<String> line = args.toList();
        assertEquals(List.of("--job-id", "job-1", "--rank", "1", "--world", "2"), line.subList(0, 6));
        assertEquals(args, WorkerArgs.parse(line.toArray(String[]::new)));
    }

    @Test
    void aMissingKeyIsNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> WorkerArgs.parse(new String[] {"--job-id", "j"}));
        assertEquals("missing --rank", e.getMessage());
    }
}
