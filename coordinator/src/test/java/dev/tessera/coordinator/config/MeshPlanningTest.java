package dev.tessera.coordinator.config;

import dev.tessera.comm.UserInputException;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.job.LauncherKind;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Planning refuses a mesh that cannot run before anything starts, naming the field that would fix it. */
class MeshPlanningTest {

    @Test
    void defaultsAreTwoLocalDataParallelWorkers() {
        JobConfig c = JobConfig.defaults();
        assertEquals(2, c.mesh().world());
        assertEquals(2, c.launch().workersFor(c.mesh()));
        assertEquals(LauncherKind.LOCAL, c.launch().launcher());
        assertEquals(0, c.restart().maxRestarts());
    }

    @Test
    void everyDivisibilityRuleNamesItsFields() {
        assertMessage("--set mesh.dp=3: train.batch_size (16) must be divisible by mesh.dp (3)", "mesh.dp=3");
        assertMessage("--set mesh.sp=3: train.seq_len (128) must be divisible by mesh.sp (3)", "mesh.sp=3");
        assertMessage("--set mesh.ep=3: mesh.ep (3) must divide the world size mesh.dp x mesh.sp = 4",
                "mesh.dp=4", "mesh.ep=3");
        assertMessage("--set mesh.ep=8: model.n_experts (4) must be divisible by mesh.ep (8)",
                "mesh.dp=8", "mesh.ep=8");
        assertMessage("--set mesh.ep=2: mesh.ep (2) needs MoE blocks to split", "model.moe_every=0", "mesh.dp=2",
                "mesh.ep=2");
        assertMessage("--set mesh.dp=0: mesh.dp must be >= 1 (got 0)", "mesh.dp=0");
    }

    @Test
    void workersMustEqualTheWorldSize() {
        assertMessage("--set launch.workers=3: launch.workers (3) must equal the world size mesh.dp x mesh.sp = 2",
                "mesh.dp=2", "launch.workers=3");
    }

    @Test
    void memoryEstimateAboveTheLimitNamesTheLimit() {
        String message = message("model.d_model=2048", "model.n_heads=16", "model.d_ff=8192",
                "launch.worker_memory_mb=1024");
        assertTrue(message.startsWith("--set launch.worker_memory_mb=1024: each worker needs about "), message);
        assertTrue(message.contains("but launch.worker_memory_mb is 1024; raise it"), message);
    }

    @Test
    void portsAndLaunchersAreChecked() {
        assertMessage("--set launch.hazelcast_port=80: launch.hazelcast_port must be in 1024..65533",
                "launch.hazelcast_port=80");
        assertMessage("--set launch.aeron_port=5702: launch.aeron_port (5702) and launch.hazelcast_port (5701) ranges"
                + " overlap", "launch.aeron_port=5702");
        assertMessage("--set launch.launcher=spark: launch.launcher 'spark' is not implemented yet; use local",
                "launch.launcher=spark");
        assertMessage("--set restart.max_restarts=-1: restart.max_restarts must be >= 0 (got -1)",
                "restart.max_restarts=-1");
    }

    @Test
    void aValidMeshPassesPlanningAndOnlyDataParallelismRunsYet() {
        assertMessage("--set mesh.sp=2: mesh.sp=2, mesh.ep=2 is planned but sequence and expert parallelism are not"
                + " implemented yet", "mesh.dp=2", "mesh.sp=2", "mesh.ep=2");
        assertEquals(4, JobConfigLoader.load(null, List.of("mesh.dp=4")).mesh().world());
    }

    private static void assertMessage(String expectedStart, String... sets) {
        String message = message(sets);
        assertTrue(message.startsWith(expectedStart), () -> "'" + message + "' does not start with '" + expectedStart + "'");
        assertEquals(1, message.lines().count(), message);
    }

    private static String message(String... sets) {
        return assertThrows(UserInputException.class, () -> JobConfigLoader.load(null, List.of(sets))).getMessage();
    }
}
