package dev.tessera.coordinator.config;

import dev.tessera.comm.UserInputException;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.parallel.SequenceScheme;
import dev.tessera.worker.job.LauncherKind;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
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
        assertMessage("--set mesh.sp=3: train.seq_len (128) must be divisible by 2 x mesh.sp (6) for mesh.sp_mode:"
                + " allgather, each sequence-parallel rank holds two equal zig-zag chunks", "mesh.sp=3");
        assertMessage("--set mesh.sp=3: train.seq_len (128) must be divisible by mesh.sp (3)", "mesh.sp=3",
                "mesh.sp_mode=ulysses");
        assertMessage("--set mesh.sp=8: model.n_heads (4) must be divisible by mesh.sp (8) for mesh.sp_mode: ulysses",
                "mesh.dp=1", "mesh.sp=8", "mesh.sp_mode=ulysses");
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
    void memoryRefusalProposesTheSmallestChangeThatFits() {
        List<String> sets = List.of("model.d_model=1024", "model.n_heads=16", "model.d_ff=4096", "model.n_layers=8",
                "launch.worker_memory_mb=2048");
        String message = message(sets.toArray(String[]::new));
        assertTrue(message.startsWith("--set launch.worker_memory_mb=2048: each worker needs about "), message);
        assertTrue(message.contains("but launch.worker_memory_mb is 2048; the smallest change that fits is "),
                message);
        List<String> change = proposed(message, "the smallest change that fits is ", " (about ");
        assertTrue(change.get(0).startsWith("zero.stage="), message);
        List<String> all = new ArrayList<>(sets);
        all.addAll(change);
        JobConfigLoader.load(null, all); // the proposed settings plan
        int raise = Integer.parseInt(message.substring(message.lastIndexOf("raise launch.worker_memory_mb to ")
                + "raise launch.worker_memory_mb to ".length()));
        List<String> raised = new ArrayList<>(sets);
        raised.add("launch.worker_memory_mb=" + raise);
        JobConfigLoader.load(null, raised);
        raised.set(raised.size() - 1, "launch.worker_memory_mb=" + (raise - 2));
        assertThrows(UserInputException.class, () -> JobConfigLoader.load(null, raised));
    }

    @Test
    void oneWorkerIsProposedCheckpointingAndWhereNoMeshFitsNothingIs() {
        // One worker: no ZeRO to turn on, so recomputation (large activations) or a wider mesh.
        String message = message("mesh.dp=1", "train.batch_size=64", "train.seq_len=512",
                "launch.worker_memory_mb=1536");
        List<String> change = proposed(message, "the smallest change that fits is ", " (about ");
        assertEquals(List.of("train.activation_checkpointing=blocks"), change, message);
        // The smallest budget, and blocks wide enough that the runtime and two gathered blocks alone exceed it.
        String tooSmall = message("model.d_model=1024", "model.d_ff=4096", "launch.worker_memory_mb=256");
        assertTrue(tooSmall.contains("no ZeRO stage, activation checkpointing, sequence-parallel width up to"
                + " train.seq_len or data-parallel width up to train.batch_size fits; raise launch.worker_memory_mb"
                + " to "), tooSmall);
    }

    /**
     * One long sequence that does not fit one worker even recomputing its blocks: the refusal names the smallest
     * sequence-parallel width that fits, and that width plans.
     */
    @Test
    void aSequenceTooLongForOneWorkerIsProposedTheSmallestSequenceParallelWidth() {
        // Ulysses keeps [H/sp, T, T] probabilities where the all-gather keeps [H, T/sp, T]: the same at one width,
        // but its width stops at n_heads (4 here), so it is given more memory.
        for (String[] mode : new String[][] {{"allgather", "900"}, {"ulysses", "1000"}}) {
            List<String> sets = List.of("mesh.dp=1", "train.batch_size=1", "train.seq_len=8192",
                    "train.activation_checkpointing=blocks", "mesh.sp_mode=" + mode[0],
                    "launch.worker_memory_mb=" + mode[1]);
            String message = message(sets.toArray(String[]::new));
            List<String> change = proposed(message, "the smallest change that fits is ", " (about ");
            assertTrue(change.get(0).startsWith("mesh.sp="), message);
            int sp = Integer.parseInt(change.get(0).substring("mesh.sp=".length()));
            assertTrue(sp >= 2, message);
            List<String> all = new ArrayList<>(sets);
            all.addAll(change);
            JobConfigLoader.load(null, all);
            List<String> narrower = new ArrayList<>(sets);
            narrower.add("mesh.sp=" + sp / 2);
            assertThrows(UserInputException.class, () -> JobConfigLoader.load(null, narrower), mode[0] + " sp/2 fits");
        }
    }

    /** "a: 1, b: x" between two markers, as --set arguments. */
    private static List<String> proposed(String message, String from, String to) {
        int start = message.indexOf(from);
        assertTrue(start >= 0, message);
        String settings = message.substring(start + from.length(), message.indexOf(to, start));
        List<String> out = new ArrayList<>();
        for (String kv : settings.split(", ")) {
            out.add(kv.replace(": ", "="));
        }
        return out;
    }

    @Test
    void portsAndLaunchersAreChecked() {
        assertMessage("--set launch.hazelcast_port=80: launch.hazelcast_port must be in 1024..65533",
                "launch.hazelcast_port=80");
        assertMessage("--set launch.aeron_port=5702: launch.aeron_port (5702) and launch.hazelcast_port (5701) ranges"
                + " overlap", "launch.hazelcast_port=5701", "launch.aeron_port=5702");
        assertMessage("--set launch.aeron_port=70000: launch.aeron_port must be in 1024..65533 so that world size + 1"
                + " = 3 ports fit, or 0 to pick free ports at launch (got 70000)", "launch.aeron_port=70000");
        assertMessage("--set launch.hazelcast_port=-1: launch.hazelcast_port must be in 1024..65533",
                "launch.hazelcast_port=-1");
        assertMessage("--set launch.launcher=yarn: launch.launcher must be one of local, cluster, spark",
                "launch.launcher=yarn");
        assertMessage("--set restart.max_restarts=-1: restart.max_restarts must be >= 0 (got -1)",
                "restart.max_restarts=-1");
    }

    @Test
    void portZeroIsTheDefaultAndIsPickedAtLaunch() {
        JobConfig defaults = JobConfigLoader.load(null, List.of());
        assertEquals(0, defaults.launch().hazelcastPort());
        assertEquals(0, defaults.launch().aeronPort());
        // One range fixed and the other picked: the picker keeps clear of the fixed one, so there is no overlap.
        JobConfig oneFixed = JobConfigLoader.load(null, List.of("launch.hazelcast_port=5701", "launch.aeron_port=0"));
        assertEquals(5701, oneFixed.launch().hazelcastPort());
        assertEquals(0, oneFixed.launch().aeronPort());
        assertEquals(0, JobConfigLoader.load(null, List.of("launch.hazelcast_port=0", "launch.aeron_port=5702"))
                .launch().hazelcastPort());
    }

    @Test
    void aValidMeshPassesPlanningAndEveryDimensionRuns() {
        JobConfig sp = JobConfigLoader.load(null, List.of("mesh.dp=2", "mesh.sp=2", "mesh.ep=2", "zero.stage=2",
                "mesh.sp_mode=ulysses"));
        assertEquals(4, sp.mesh().world());
        assertEquals(SequenceScheme.ULYSSES, sp.mesh().spMode());
        assertTrue(message("mesh.sp_mode=striped").startsWith("--set mesh.sp_mode="), message("mesh.sp_mode=striped"));
        assertTrue(message("mesh.sp_mode=striped").contains("ulysses"), message("mesh.sp_mode=striped"));
        assertEquals(3, JobConfigLoader.load(null, List.of("mesh.dp=2", "mesh.ep=2", "zero.stage=3")).zero().stage());
        assertMessage("--set moe.ranks_per_node=3: moe.ranks_per_node=3 must divide mesh.ep=4", "mesh.dp=4",
                "mesh.ep=4", "moe.all_to_all=hierarchical", "moe.ranks_per_node=3");
        assertTrue(message("moe.all_to_all=ring").contains("moe.all_to_all"), message("moe.all_to_all=ring"));
        assertEquals(4, JobConfigLoader.load(null, List.of("mesh.dp=4")).mesh().world());
        assertEquals(2, JobConfigLoader.load(null, List.of("mesh.dp=4", "mesh.ep=2")).mesh().ep());
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
