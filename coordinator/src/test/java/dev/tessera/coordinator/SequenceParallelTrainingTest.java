package dev.tessera.coordinator;

import static dev.tessera.coordinator.ClusterTrainingTest.assertLossesClose;
import static dev.tessera.coordinator.ClusterTrainingTest.assertNothingLeft;
import static dev.tessera.coordinator.ClusterTrainingTest.job;
import static dev.tessera.coordinator.ClusterTrainingTest.load;
import static dev.tessera.coordinator.ClusterTrainingTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.coordinator.cli.Main;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Sequence parallelism on real worker JVMs against the single-process run (DESIGN.md's equivalence rule, ALGORITHMS.md
 * 8, oracle 4): every scheme at sp = 2, sp = 4 and sp = 2 x dp = 2 (there with ZeRO-1, -2 and -3 for the
 * all-gather, the ring and Ulysses) follows it over 20 steps, which checks the label
 * shift before sharding, the global positions of RoPE and the mask, the loss normalised by the global token count, and
 * the gradients summed over the sequence-parallel ranks and averaged over the data-parallel ones. The model has MoE
 * blocks, routed locally on each rank's tokens. A checkpoint of one sp resumes onto another.
 */
@Timeout(900)
@ExtendWith(QuickStartChildJvms.class)
class SequenceParallelTrainingTest {

    @TempDir
    Path tmp;

    /** The single-process run every test compares with, trained once for the class. */
    @TempDir
    static Path alone;

    private static Path single;

    @BeforeAll
    static void trainTheSingleProcessRun() {
        single = alone.resolve("single");
        assertEquals(0, Main.run(job(single, 1, 20).toArray(String[]::new)));
    }

    /** {@link ClusterTrainingTest#job} cut over {@code sp} ranks by {@code mode}. */
    private static List<String> spJob(Path out, int dp, int sp, String mode, String... extra) {
        List<String> args = new ArrayList<>(job(out, dp, 20, extra));
        args.addAll(List.of("--set", "mesh.sp=" + sp, "--set", "mesh.sp_mode=" + mode));
        return args;
    }

    @Test
    void everySchemeFollowsTheSingleProcessRunAtEverySequenceParallelWidth() throws Exception {
        String[] modes = {"allgather", "ring", "ulysses"};
        for (int m = 0; m < modes.length; m++) {
            String mode = modes[m];
            for (int[] mesh : new int[][] {{1, 2}, {1, 4}, {2, 2}}) {
                // With dp = 2 each scheme also runs under one ZeRO stage: the parameters are sharded over all four.
                int zero = mesh[0] == 2 ? m + 1 : 0;
                Path run = tmp.resolve(mode + "-dp" + mesh[0] + "-sp" + mesh[1] + "-zero" + zero);
                ClusterTrainingTest.Run result = run(spJob(run, mesh[0], mesh[1], mode, "--set", "zero.stage=" + zero));
                assertEquals(0, result.code(), result.err());
                assertNothingLeft(result.jobIds());
                assertLossesClose(single, run);
                assertSameWeights(single, run, run.getFileName().toString());
            }
        }
    }

    /**
     * MoE under sequence parallelism with expert parallelism: the two ranks of a sequence each hold half of the
     * experts, and each one's tokens reach them by the expert all-to-all, as under data parallelism.
     */
    @Test
    void expertParallelismWorksAcrossTheSequenceParallelRanks() throws Exception {
        Path run = tmp.resolve("sp2-ep2");
        ClusterTrainingTest.Run result = run(spJob(run, 1, 2, "allgather", "--set", "mesh.ep=2"));
        assertEquals(0, result.code(), result.err());
        assertNothingLeft(result.jobIds());
        assertLossesClose(single, run);
        assertSameWeights(single, run, "sp=2 with ep=2");
    }

    /**
     * A checkpoint holds the model, not its placement: an sp = 2 run's step-10 checkpoint resumes onto one process
     * and onto sp = 4 with another scheme and ZeRO-2, and both follow the single-process run over steps 11-20.
     */
    @Test
    void aCheckpointResumesOntoAnotherSequenceParallelWidth() throws Exception {
        Path run = tmp.resolve("sp2");
        ClusterTrainingTest.Run result = run(spJob(run, 1, 2, "allgather", "--set", "checkpoint.every=10"));
        assertEquals(0, result.code(), result.err());
        String[][] targets = {{"1", "1", "allgather", "0"}, {"1", "4", "ulysses", "2"}};
        for (String[] t : targets) {
            Path resumed = tmp.resolve("resumed-sp" + t[1]);
            ClusterTrainingTest.Run again = run(List.of("train", "--resume",
                    run.resolve("checkpoints/step-0000010").toString(), "--out", resumed.toString(), "--set",
                    "mesh.dp=" + t[0], "--set", "mesh.sp=" + t[1], "--set", "mesh.sp_mode=" + t[2], "--set",
                    "zero.stage=" + t[3]));
            assertEquals(0, again.code(), again.err());
            if (!t[1].equals("1")) { // one process trains in this JVM, with no workers to leave behind
                assertNothingLeft(again.jobIds());
            }
            assertLossesClose(ClusterTrainingTest.losses(single), resumed, 11, 20);
            assertSameWeights(single, resumed, "resumed onto sp=" + t[1]);
        }
    }

    private static void assertSameWeights(Path single, Path run, String what) {
        INDArray expected = load(single.resolve("checkpoints/step-0000020"));
        INDArray actual = load(run.resolve("checkpoints/step-0000020"));
        double relative = ClusterTrainingTest.relativeDifference(actual, expected);
        assertTrue(relative <= ClusterTrainingTest.TOLERANCE, what + ": final weights differ by " + relative);
    }
}
