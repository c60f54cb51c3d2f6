package dev.tessera.worker.run;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.datatype.jdk8.Jdk8Module;
import dev.tessera.optimizers.OptimizerSpec;
import dev.tessera.worker.data.DataSpec;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.train.TrainConfig;
import java.util.Map;

/**
 * Everything a replica needs to train, resolved by the coordinator from the job config: the model shape, the
 * loop's hyperparameters, the data, the optimizer, where outputs go, what to resume from (or null), and the
 * full job config as a map (stored in checkpoints so a resume knows what it continues). Travels as JSON.
 * {@code zeroStage} 0-3 is how far ZeRO shards the model state over the data-parallel group (no effect alone).
 */
public record WorkerJob(ModelConfig model, TrainConfig train, DataSpec data, boolean float64,
                        OptimizerSpec optimizer, int zeroStage, String runDir, String resume, Map<String, Object> job) {

    private static final ObjectMapper JSON = new ObjectMapper().registerModule(new Jdk8Module());

    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot encode the worker job: " + e.getMessage(), e);
        }
    }

    public static WorkerJob fromJson(String json) {
        try {
            return JSON.readValue(json, WorkerJob.class);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("malformed worker job: " + e.getOriginalMessage(), e);
        }
    }
}
