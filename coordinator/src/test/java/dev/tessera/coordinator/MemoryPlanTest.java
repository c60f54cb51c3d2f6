package dev.tessera.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.coordinator.config.JobConfigLoader;
import dev.tessera.coordinator.config.MemoryPlan;
import dev.tessera.worker.bench.ModelPreset;
import dev.tessera.worker.parallel.MemoryEstimate;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The planner's per-worker estimate against what the workers measure: the peak resident memory (VmHWM) of the
 * fullest worker of a real run, from summary.json, must be within 15% of {@link MemoryEstimate}. CI runs one case
 * per ZeRO stage, across the presets and checkpointing settings; {@code -Dtessera.memory.matrix=full} runs every
 * preset x stage x checkpointing (36 runs, about 15 minutes; each prints a line starting {@code memory plan:}):
 * {@code mvn -B verify -pl coordinator -am -Dtest=MemoryPlanTest -Dsurefire.failIfNoSpecifiedTests=false
 * -Dtessera.memory.matrix=full}. The large preset's figures are in docs/PERFORMANCE.md.
 */
@Timeout(3600)
class MemoryPlanTest {

    private static final double TOLERANCE = 0.15;

    @TempDir
    Path tmp;

    static Stream<Arguments> cases() {
        if ("full".equals(System.getProperty("tessera.memory.matrix"))) {
            List<Arguments> all = new ArrayList<>();
            for (ModelPreset preset : List.of(ModelPreset.DENSE, ModelPreset.MOE, ModelPreset.WIDE)) {
                for (int stage = 0; stage <= 3; stage++) {
                    for (String checkpointing : List.of("none", "blocks", "every_k")) {
                        all.add(Arguments.of(preset, stage, checkpointing, 2));
                    }
                }
            }
            return all.stream();
        }
        return Stream.of(Arguments.of(ModelPreset.DENSE, 0, "every_k", 2),
                Arguments.of(ModelPreset.MOE, 1, "none", 4),
                Arguments.of(ModelPreset.WIDE, 2, "none", 2),
                Arguments.of(ModelPreset.WIDE, 3, "blocks", 2));
    }

    @ParameterizedTest(name = "{0} on {3} workers, ZeRO-{1}, checkpointing {2}")
    @MethodSource("cases")
    void theEstimateIsWithinFifteenPercentOfTheMeasuredPeak(ModelPreset preset, int stage, String checkpointing,
                                                           int workers) throws Exception {
        List<String> sets = TrainBench.presetSets(preset);
        sets.addAll(List.of("train.steps=12", "optimizer.warmup_steps=2", "eval.every=0", "checkpoint.every=0",
                "mesh.dp=" + workers, "zero.stage=" + stage, "train.activation_checkpointing=" + checkpointing));
        MemoryEstimate estimate = MemoryEstimate.of(MemoryPlan.job(JobConfigLoader.load(null, sets)));

        List<String> args = new ArrayList<>(List.of("train", "--out", tmp.resolve("run").toString()));
        sets.forEach(s -> args.addAll(List.of("--set", s)));
        ClusterTrainingTest.Run run = ClusterTrainingTest.run(args);
        assertEquals(0, run.code(), run.err());
        ClusterTrainingTest.assertNothingLeft(run.jobIds());
        long measured = new ObjectMapper().readTree(run.dir().resolve("summary.json").toFile())
                .get("memory").get("peak_rss_bytes").asLong();
        double ratio = estimate.total().doubleValue() / measured;
        System.out.printf("memory plan: %s dp %d ZeRO-%d %s: estimate %d MB, measured %d MB, ratio %.3f%n",
                preset.id(), workers, stage, checkpointing, estimate.total().shiftRight(20), measured >> 20, ratio);
        assertTrue(Math.abs(ratio - 1) <= TOLERANCE, String.format("estimate %d MB (%s) against a measured peak of"
                + " %d MB: ratio %.3f", estimate.total().shiftRight(20), estimate, measured >> 20, ratio));
    }
}
