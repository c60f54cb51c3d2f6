package dev.tessera.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.coordinator.config.JobConfigLoader;
import dev.tessera.coordinator.config.MemoryPlan;
import dev.tessera.worker.bench.ModelPreset;
import dev.tessera.worker.job.ActivationCheckpointing;
import dev.tessera.worker.job.GateKind;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.job.OptimizerKind;
import dev.tessera.worker.model.ModelConfig;
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

    /** A large-preset step takes minutes and is reported after the next one: its silence limit allows for that. */
    @Test
    void theLargePresetsWorkersMayBeSilentForHalfAnHour() {
        JobConfig large = JobConfigLoader.load(null, TrainBench.sets(new TrainBench.Setup(ModelPreset.LARGE, 2, 3,
                OptimizerKind.CAME, ActivationCheckpointing.BLOCKS, 2, 3)));
        assertEquals(1800, large.fault().deadAfterS());
        JobConfig dense = JobConfigLoader.load(null, TrainBench.sets(new TrainBench.Setup(ModelPreset.DENSE, 2, 3,
                OptimizerKind.CAME, ActivationCheckpointing.BLOCKS, 2, 1)));
        assertEquals(300, dense.fault().deadAfterS());
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
        assertEquals("topk", json.get("gate").asText());
        assertEquals(0, json.get("expert_bytes_per_rank").asLong(), "the dense preset has no experts");
    }

    /** --gate reaches the job with the top_k (or hypernetwork) the gate needs; the expert bytes are the layout's. */
    @Test
    void theGateReachesTheJobAndTheExpertBytesAreTheLayouts() {
        JobConfig topk = JobConfigLoader.load(null, TrainBench.sets(new TrainBench.Setup(ModelPreset.MOE, 2, 0,
                OptimizerKind.ADAMW, ActivationCheckpointing.NONE, 2, 1)));
        assertEquals(GateKind.TOPK, topk.model().gate());
        JobConfig switched = JobConfigLoader.load(null, TrainBench.sets(new TrainBench.Setup(ModelPreset.MOE, 2, 0,
                OptimizerKind.ADAMW, ActivationCheckpointing.NONE, 2, 1, GateKind.SWITCH)));
        assertEquals(GateKind.SWITCH, switched.model().gate());
        assertEquals(1, switched.model().topK());
        JobConfig hyper = JobConfigLoader.load(null, TrainBench.sets(new TrainBench.Setup(ModelPreset.MOE, 2, 0,
                OptimizerKind.ADAMW, ActivationCheckpointing.NONE, 2, 1, GateKind.HYPER)));
        assertEquals(256, hyper.model().hyperSize());

        ModelConfig m = ModelPreset.MOE.config();
        long moeLayers = java.util.stream.IntStream.range(0, m.nLayers()).filter(m::isMoeBlock).count();
        long expected = moeLayers * m.nExperts() * 3L * m.dModel() * m.expertDFF() * Float.BYTES;
        assertTrue(expected > 0);
        assertEquals(expected, TrainBench.expertBytesPerRank(switched));
    }
}
