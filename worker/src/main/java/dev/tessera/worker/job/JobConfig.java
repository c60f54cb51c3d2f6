package dev.tessera.worker.job;

import dev.tessera.comm.compress.CompressionSpec;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.train.TrainConfig;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * A fully resolved training job, the one spec of a run: every field set (from defaults, a YAML file or
 * {@code --set} flags; the coordinator's {@code JobConfigLoader} binds and validates it). {@link #defaults()} is
 * the embedded default job. {@code out} is null when the run directory should be {@code runs/<timestamp>}.
 */
public record JobConfig(ModelSection model, DataSection data, TrainSection train, OptimizerSection optimizer,
                        EvalSection eval, CheckpointSection checkpoint, MeshSection mesh, LaunchSection launch,
                        RestartSection restart, ZeroSection zero, MoeSection moe, CompressionSpec compression,
                        FaultSection fault, Co2Section co2, String out) {

    public static JobConfig defaults() {
        return new JobConfig(ModelSection.defaults(), DataSection.defaults(), TrainSection.defaults(),
                OptimizerSection.defaults(), EvalSection.defaults(), CheckpointSection.defaults(),
                MeshSection.defaults(), LaunchSection.defaults(), RestartSection.defaults(), ZeroSection.defaults(),
                MoeSection.defaults(), CompressionSpec.defaults(), FaultSection.defaults(), Co2Section.defaults(), null);
    }

    public Optional<Path> outDir() {
        return Optional.ofNullable(out).map(Path::of);
    }

    /** The same job writing to {@code outDir} (a --out flag, or the directory actually created). */
    public JobConfig withOut(String outDir) {
        return new JobConfig(model, data, train, optimizer, eval, checkpoint, mesh, launch, restart, zero, moe,
                compression, fault, co2, outDir);
    }

    /** The model's shape. A dense model (no MoE block) carries no expert fields, as ModelConfig.dense. */
    public ModelConfig toModelConfig() {
        ModelSection m = model;
        if (!m.hasMoe()) {
            return new ModelConfig(m.vocabSize(), m.dModel(), m.nLayers(), m.nHeads(), m.dFF(), 0, 0, 0, 0,
                    m.ropeTheta(), m.normEps(), 0.0, train.seqLen());
        }
        return new ModelConfig(m.vocabSize(), m.dModel(), m.nLayers(), m.nHeads(), m.dFF(), m.nExperts(), m.topK(),
                m.moeEvery(), m.expertDFF(), m.ropeTheta(), m.normEps(), m.auxCoef(), train.seqLen(), m.routing());
    }

    /** What the training loop runs by. */
    public TrainConfig toTrainConfig() {
        OptimizerSection o = optimizer;
        return new TrainConfig(train.steps(), train.batchSize(), train.seqLen(), train.seed(), o.lr(), o.minLr(),
                o.warmupSteps(), o.gradClip(), eval.every(), eval.batches(), checkpoint.every());
    }

    /**
     * Nested maps with the YAML's snake_case keys, in the YAML's order: the schema the loader checks keys against,
     * and what config.yaml, summary.json and trainer_state.json store.
     */
    public Map<String, Object> toMap() {
        return SpecFields.toMap(this);
    }
}
