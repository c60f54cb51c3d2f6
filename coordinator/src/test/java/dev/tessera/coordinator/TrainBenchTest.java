package dev.tessera.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.coordinator.config.JobConfigLoader;
import dev.tessera.coordinator.config.MemoryPlan;
import dev.tessera.worker.bench.ModelPreset;
import dev.tessera.worker.job.ActivationCheckpointing;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.job.OptimizerKind;
import dev.tessera.worker.model.RecomputePolicy;
import dev.tessera.worker.parallel.MemoryEstimate;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@code bench train}'s settings reach the job, and its result carries the planner's estimate. */
@Timeout(300)
class TrainBenchTest {

    @Test
    void activationCheckpointingReachesTheWorkersTrainConfig() {
        JobConfig blocks = JobConfigLoader.load(null, TrainBench.sets(new TrainBench.Setup(ModelPreset.DENSE, 2, 3,
                OptimizerKind.CAME, ActivationCheckpointing.BLOCKS, 2, 1)));
        assertEquals(RecomputePolicy.EVERY_BLOCK, blocks.train().recomputePolicy());
        JobConfig everyThird = JobConfigLoader.load(null, TrainBench.sets(new TrainBench.Setup(ModelPreset.DENSE, 2,
                3, OptimizerKind.CAME, ActivationCheckpointing.EVERY_K, 3, 1)));
        assertEquals(new RecomputePolicy(3), everyThird.train().recomputePolicy());
        assertEquals(3, everyThird.zero().stage());
    }

    /** The loader validates: the planner accepts the large preset's workers for the runs docs/PERFORMANCE.md records. */
    @Test
    void thePlannerAcceptsTheLargePresetsWorkerMemory() {
        for (ActivationCheckpointing mode : ActivationCheckpointing.values()) {
            List<String> sets = TrainBench.sets(new TrainBench.Setup(ModelPreset.LARGE, 2, 3, OptimizerKind.CAME, mode,
                    2, 3));
            MemoryEstimate estimate = MemoryEstimate.of(MemoryPlan.job(JobConfigLoader.load(null, sets)));
            assertTrue(estimate.total().longValueExact() <= (long) ModelPreset.LARGE.trainBenchWorkerMemoryMb() << 20,
                    mode + ": " + estimate);
        }
    }

    @Test
    void theJsonReportsTheEstimateNextToTheMeasuredPeak() throws Exception {
        TrainBench.Setup setup = new TrainBench.Setup(ModelPreset.DENSE, 1, 0, OptimizerKind.ADAMW,
                ActivationCheckpointing.BLOCKS, 2, 1);
        TrainBench.Result r = TrainBench.run(setup);
        long estimate = MemoryEstimate.of(MemoryPlan.job(JobConfigLoader.load(null, TrainBench.sets(setup))))
                .total().longValueExact();
        JsonNode json = new ObjectMapper().readTree(r.json());
        assertEquals("blocks", json.get("activation_checkpointing").asText());
        assertEquals(2, json.get("recompute_every").asInt());
        assertEquals(estimate, json.get("estimated_peak_rss_bytes").asLong());
        assertTrue(json.get("peak_rss_bytes").asLong() > 0, r.json());
        assertEquals(1, json.get("steps").asInt());
    }
}
