package dev.tessera.coordinator;

import dev.tessera.comm.UserInputException;
import dev.tessera.coordinator.cli.TrainAction;
import dev.tessera.coordinator.config.DataSection;
import dev.tessera.coordinator.config.DataSourceKind;
import dev.tessera.coordinator.config.Dtype;
import dev.tessera.coordinator.config.JobConfig;
import dev.tessera.coordinator.run.ProgressBar;
import dev.tessera.coordinator.run.RunDirectory;
import dev.tessera.coordinator.run.RunRecorder;
import dev.tessera.coordinator.run.RunSummary;
import dev.tessera.optimizers.Optimizer;
import dev.tessera.worker.checkpoint.Checkpoint;
import dev.tessera.worker.checkpoint.CheckpointWriter;
import dev.tessera.worker.data.SyntheticCorpus;
import dev.tessera.worker.data.TextDataset;
import dev.tessera.worker.data.TokenSource;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.Transformer;
import dev.tessera.worker.train.ParamSpans;
import dev.tessera.worker.train.TrainConfig;
import dev.tessera.worker.train.TrainingLoop;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.OptionalDouble;
import org.nd4j.linalg.api.buffer.DataType;

/** Trains a job in this process: one replica, the whole global batch (the mesh of size 1). */
public final class LocalTraining implements TrainAction {

    private final PrintStream out;

    public LocalTraining(PrintStream out) {
        this.out = out;
    }

    @Override
    public int run(JobConfig job, RunDirectory directory, Path resume) throws Exception {
        long wallStart = System.nanoTime();
        ModelConfig modelConfig = job.toModelConfig();
        TrainConfig trainConfig = job.toTrainConfig();
        TokenSource data = openData(job.data(), trainConfig.seqLen());
        out.println("data: " + data.describe());
        Transformer model = new Transformer(modelConfig, dataType(job.model().dtype()),
                trainConfig.batchSize(), trainConfig.seqLen());
        model.initialize(trainConfig.seed());
        Optimizer optimizer = Optimizers.create(job.optimizer(), model.parameters().params(),
                model.parameters().grads(), ParamSpans.of(model.parameters()));
        out.printf("model: %,d parameters, %d layers, d_model %d%s; run directory %s%n",
                model.parameters().numel(), modelConfig.nLayers(), modelConfig.dModel(),
                modelConfig.nExperts() > 0 ? ", " + modelConfig.nExperts() + " experts top-" + modelConfig.topK() : "",
                directory.root());

        long completed = 0;
        if (resume != null) {
            Checkpoint checkpoint = Checkpoint.open(resume);
            if (!checkpoint.modelConfig().equals(modelConfig)) {
                throw new UserInputException("checkpoint " + checkpoint.dir() + " holds a model of shape "
                        + checkpoint.modelConfig() + ", but the job asks for " + modelConfig
                        + "; resume with the checkpoint's model settings");
            }
            checkpoint.loadParameters(model.parameters());
            checkpoint.loadOptimizerState(0, optimizer.state());
            completed = checkpoint.step();
            out.println("resumed from " + checkpoint.dir() + " at step " + completed);
        }

        Map<String, Object> jobMap = job.toMap();
        ProgressBar bar = ProgressBar.forStandardOutput();
        try (RunRecorder recorder = resume != null
                ? RunRecorder.resume(directory, bar, completed)
                : RunRecorder.open(directory, bar)) {
            TrainingLoop loop = new TrainingLoop(model, data, trainConfig, optimizer, recorder.listener(),
                    step -> CheckpointWriter.write(directory.root(), step, modelConfig, model.parameters(),
                            optimizer.state(), trainerState(step, jobMap)));
            TrainingLoop.Result result = loop.run(completed);
            OptionalDouble floor = data.entropyFloor();
            OptionalDouble unigram = data instanceof SyntheticCorpus corpus
                    ? OptionalDouble.of(corpus.unigramEntropy()) : OptionalDouble.empty();
            RunSummary summary = new RunSummary(result.steps(), result.tokens(), result.finalLoss(),
                    Double.isNaN(result.evalLoss()) ? OptionalDouble.empty() : OptionalDouble.of(result.evalLoss()),
                    floor, unigram, result.tokensPerSecond(), (System.nanoTime() - wallStart) / 1e9,
                    model.parameters().numel(), optimizer.stateBytes(), jobMap);
            recorder.finish(summary, "Tessera: " + directory.root().getFileName());
            out.printf("done: %d steps, final loss %.4f, eval loss %.4f%s, %.0f tokens/s; %s%n",
                    trainConfig.steps(), result.finalLoss(), result.evalLoss(),
                    floor.isPresent() ? String.format(" (entropy floor %.4f, ratio %.3f)", floor.getAsDouble(),
                            result.evalLoss() / floor.getAsDouble()) : "",
                    result.tokensPerSecond(), directory.summaryFile());
        }
        return 0;
    }

    static TokenSource openData(DataSection data, int seq) {
        if (data.source() == DataSourceKind.TEXT) {
            Path path = data.textPath().orElseThrow(() ->
                    new UserInputException("data.path is required when data.source is text"));
            TextDataset text = new TextDataset(path, data.valFraction(), data.seed());
            text.checkFits(TokenSource.Split.TRAIN, seq);
            text.checkFits(TokenSource.Split.VALIDATION, seq);
            return text;
        }
        var s = data.synthetic();
        return new SyntheticCorpus(new SyntheticCorpus.Spec(s.domains(), s.symbolsPerDomain(), s.branching(),
                data.seed()), seq);
    }

    private static DataType dataType(Dtype dtype) {
        return dtype == Dtype.FLOAT64 ? DataType.DOUBLE : DataType.FLOAT;
    }

    private static Map<String, Object> trainerState(long step, Map<String, Object> job) {
        Map<String, Object> state = new LinkedHashMap<>();
        state.put("step", step);
        state.put("data_cursor", Map.of("next_step", step + 1));
        state.put("rng", Map.of("note", "every random draw is a pure function of (seed, step, sample)"));
        state.put("mesh", Map.of("dp", 1, "sp", 1, "ep", 1, "world", 1));
        state.put("job", job);
        return state;
    }
}
