package dev.tessera.coordinator;

import dev.tessera.comm.DriverMode;
import dev.tessera.comm.Transport;
import dev.tessera.comm.UserInputException;
import dev.tessera.comm.control.ControlMessage;
import dev.tessera.worker.cluster.ClusterSettings;
import dev.tessera.worker.job.FaultSection;
import dev.tessera.worker.job.LaunchSection;
import dev.tessera.worker.job.LauncherKind;
import dev.tessera.coordinator.launch.Launcher;
import dev.tessera.coordinator.launch.Placement;
import dev.tessera.coordinator.launch.WorkerState;
import dev.tessera.worker.run.WorkerArgs;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What the supervisor refuses before it starts anything: placements the data plane cannot work with. */
class SupervisorTest {

    private static final Placement HOME = new Placement("host-a", "198.18.9.1", DriverMode.SHARED_PER_HOST);

    @Test
    void ipcWithAWorkerOnAnotherHostIsTheUsersErrorAndNothingStarts() {
        Placements launcher = new Placements(List.of(HOME,
                new Placement("host-b", "198.18.9.3", DriverMode.PER_PROCESS)));
        UserInputException e = assertThrows(UserInputException.class,
                () -> supervisor(Transport.IPC).run(launcher, NO_JOB));
        assertEquals("launch.transport: ipc needs every worker on the coordinator's host, but rank 1 runs on host-b;"
                + " use auto or udp", e.getMessage());
        assertTrue(launcher.closed, "the launcher is closed");
        assertEquals(0, launcher.started, "workers started");
    }

    @Test
    void aWorkerWithItsOwnDriverOnTheCoordinatorsHostIsRefused() {
        Placements launcher = new Placements(List.of(HOME,
                new Placement("host-a", "198.18.9.1", DriverMode.PER_PROCESS)));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> supervisor(Transport.AUTO).run(launcher, NO_JOB));
        assertTrue(e.getMessage().startsWith("the launcher placed rank 1 on host host-a with PER_PROCESS"),
                e.getMessage());
        assertEquals(0, launcher.started, "workers started");
    }

    @Test
    void twoWorkersWithDriversOfTheirOwnOnOneHostAreRefused() {
        Placement b = new Placement("host-b", "198.18.9.3", DriverMode.PER_PROCESS);
        Placements launcher = new Placements(List.of(b, b));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> supervisor(Transport.UDP).run(launcher, NO_JOB));
        assertTrue(e.getMessage().startsWith("the launcher placed rank 1 on host host-b"), e.getMessage());
    }

    private static Supervisor supervisor(Transport transport) {
        return new Supervisor(2, new LaunchSection(LauncherKind.LOCAL, 0, 1024, 0, 0, transport,
                ClusterSettings.LOOPBACK),
                FaultSection.defaults(), new PrintStream(new ByteArrayOutputStream()));
    }

    private static final Supervisor.JobSide NO_JOB = new Supervisor.JobSide() {
        @Override
        public ControlMessage assignment(int rank) {
            throw new AssertionError("no worker may be assigned anything");
        }

        @Override
        public void assigned() {
            throw new AssertionError("no worker may be assigned anything");
        }

        @Override
        public void report(ControlMessage report) {
            throw new AssertionError("no worker may report");
        }
    };

    /** A launcher that only places: the coordinator on HOME, the ranks where the test says. */
    private static final class Placements implements Launcher {

        private final List<Placement> workers;
        int started;
        boolean closed;

        Placements(List<Placement> workers) {
            this.workers = workers;
        }

        @Override
        public Placement coordinator() {
            return HOME;
        }

        @Override
        public Placement placement(int rank) {
            return workers.get(rank);
        }

        @Override
        public void start(WorkerArgs args, Map<String, String> env) {
            started++;
        }

        @Override
        public WorkerState state(int rank) {
            return WorkerState.UNSEEN;
        }

        @Override
        public String describe(int rank) {
            return "rank " + rank;
        }

        @Override
        public void awaitExit(long timeoutMs) {
        }

        @Override
        public void close() {
            closed = true;
        }
    }
}
