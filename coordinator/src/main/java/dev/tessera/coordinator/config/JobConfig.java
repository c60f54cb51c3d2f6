package dev.tessera.coordinator.config;

import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.run.WorkerJob;
import dev.tessera.worker.train.TrainConfig;
import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.Yaml;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * A fully resolved training job: every field set (from defaults, a YAML file or {@code --set} flags). Build one
 * with {@link JobConfigLoader}; {@link #defaults()} is the embedded default job. {@code out} is null when the
 * run directory should be {@code runs/<timestamp>}.
 */
public record JobConfig(ModelSection model, DataSection data, TrainSection train, OptimizerSection optimizer,
                        EvalSection eval, CheckpointSection checkpoint, MeshSection mesh, LaunchSection launch,
                        RestartSection restart, ZeroSection zero, FaultSection fault, String out) {

    public static JobConfig defaults() {
        return new JobConfig(ModelSection.defaults(), DataSection.defaults(), TrainSection.defaults(),
                OptimizerSection.defaults(), EvalSection.defaults(), CheckpointSection.defaults(),
                MeshSection.defaults(), LaunchSection.defaults(), RestartSection.defaults(), ZeroSection.defaults(),
                FaultSection.defaults(), null);
    }

    public Optional<Path> outDir() {
        return Optional.ofNullable(out).map(Path::of);
    }

    /** The same job writing to {@code outDir} (a --out flag, or the directory actually created). */
    public JobConfig withOut(String outDir) {
        return new JobConfig(model, data, train, optimizer, eval, checkpoint, mesh, launch, restart, zero, fault,
                outDir);
    }

    /** Checks every constraint; for configs built in code rather than through the loader. */
    public JobConfig validate() {
        JobConfigValidator.validate(this, path -> "");
        return this;
    }

    /** The worker's model shape. A dense model (no MoE block) carries no expert fields, as ModelConfig.dense. */
    public ModelConfig toModelConfig() {
        ModelSection m = model;
        if (!m.hasMoe()) {
            return new ModelConfig(m.vocabSize(), m.dModel(), m.nLayers(), m.nHeads(), m.dFF(), 0, 0, 0, 0,
                    m.ropeTheta(), m.normEps(), 0.0, train.seqLen());
        }
        return new ModelConfig(m.vocabSize(), m.dModel(), m.nLayers(), m.nHeads(), m.dFF(), m.nExperts(), m.topK(),
                m.moeEvery(), m.expertDFF(), m.ropeTheta(), m.normEps(), m.auxCoef(), train.seqLen());
    }

    public TrainConfig toTrainConfig() {
        OptimizerSection o = optimizer;
        return new TrainConfig(train.steps(), train.batchSize(), train.seqLen(), train.seed(), o.lr(), o.minLr(),
                o.warmupSteps(), o.weightDecay(), o.beta1(), o.beta2(), o.eps(), o.gradClip(), eval.every(),
                eval.batches(), checkpoint.every());
    }

    /** What each replica receives: the job resolved for {@code runDir}, resuming from {@code resume} (or null). */
    public WorkerJob toWorkerJob(Path runDir, Path resume) {
        return new WorkerJob(toModelConfig(), toTrainConfig(), data.toSpec(), model.dtype() == Dtype.FLOAT64,
                optimizer.toSpec(), zero.stage(), runDir.toString(), resume == null ? null : resume.toString(), toMap());
    }

    /** Nested maps with the YAML's snake_case keys; what summary.json and trainer_state.json store. */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model", model.toMap());
        m.put("data", data.toMap());
        m.put("train", train.toMap());
        m.put("optimizer", optimizer.toMap());
        m.put("eval", eval.toMap());
        m.put("checkpoint", checkpoint.toMap());
        m.put("mesh", mesh.toMap());
        m.put("launch", launch.toMap());
        m.put("restart", restart.toMap());
        m.put("zero", zero.toMap());
        m.put("fault", fault.toMap());
        m.put("out", out);
        return m;
    }

    /** The resolved config as a YAML document that {@link JobConfigLoader#load} reads back unchanged. */
    public String toYaml() {
        DumperOptions options = new DumperOptions();
        options.setDefaultFlowStyle(DumperOptions.FlowStyle.BLOCK);
        options.setIndent(2);
        return new Yaml(options).dump(toMap());
    }

    static JobConfig read(ConfigValues v) {
        return new JobConfig(ModelSection.read(v), DataSection.read(v), TrainSection.read(v),
                OptimizerSection.read(v), EvalSection.read(v), CheckpointSection.read(v), MeshSection.read(v),
                LaunchSection.read(v), RestartSection.read(v), ZeroSection.read(v), FaultSection.read(v),
                v.getOptionalString("out"));
    }
}
