package dev.tessera.worker.train;

import dev.tessera.optimizers.GradNorm;
import dev.tessera.optimizers.LrSchedule;
import dev.tessera.optimizers.Optimizer;
import dev.tessera.worker.data.TokenSource;
import dev.tessera.worker.model.LossParts;
import dev.tessera.worker.model.Transformer;
import java.io.IOException;

/**
 * The synchronous single-replica step loop: batch, forward+backward, global-norm clip, optimizer,
 * periodic validation and checkpoints. Everything a step depends on is a function of (seed, step), so
 * a run resumed from a checkpoint continues bit-identically.
 */
public final class TrainingLoop {

    /** What a finished run reports for summary.json. */
    public record Result(long steps, long tokens, double finalLoss, double evalLoss,
                         double tokensPerSecond, double trainSeconds) {
    }

    private final Transformer model;
    private final TokenSource data;
    private final TrainConfig config;
    private final Optimizer optimizer;
    private final LrSchedule schedule;
    private final TrainingListener listener;
    private final Checkpointer checkpointer;
    private final int[] inputs;
    private final int[] targets;

    public TrainingLoop(Transformer model, TokenSource data, TrainConfig config, Optimizer optimizer,
                        TrainingListener listener, Checkpointer checkpointer) {
        this.model = model;
        this.data = data;
        this.config = config;
        this.optimizer = optimizer;
        this.schedule = new LrSchedule(config.lr(), config.minLr(), config.warmupSteps(), config.steps());
        this.listener = listener;
        this.checkpointer = checkpointer;
        this.inputs = new int[config.batchSize() * config.seqLen()];
        this.targets = new int[inputs.length];
    }

    /** Runs steps {@code completedSteps+1 .. config.steps()}. */
    public Result run(long completedSteps) throws IOException {
        long tokensPerStep = (long) config.batchSize() * config.seqLen();
        double trainNanos = 0;
        double lastLoss = Double.NaN;
        double lastEval = Double.NaN;
        listener.onStart(completedSteps, config.steps());
        for (long step = completedSteps + 1; step <= config.steps(); step++) {
            long start = System.nanoTime();
            data.fill(TokenSource.Split.TRAIN, step, 0, config.batchSize(), config.seqLen(), inputs, targets);
            LossParts loss = model.forwardBackward(inputs, targets);
            double gradNorm = Math.sqrt(GradNorm.sumOfSquares(model.parameters().grads()));
            double lr = schedule.at(step);
            optimizer.step(step, lr, GradNorm.clipScale(gradNorm, config.gradClip()));
            double seconds = (System.nanoTime() - start) / 1e9;
            trainNanos += seconds * 1e9;
            lastLoss = loss.crossEntropy();
            if (!Double.isFinite(lastLoss)) {
                throw new IllegalStateException("loss became " + lastLoss + " at step " + step
                        + "; lower optimizer.lr or set optimizer.grad_clip");
            }
            listener.onStep(new StepMetrics(step, lastLoss, loss.aux(), lr, gradNorm,
                    tokensPerStep / seconds, seconds));
            boolean last = step == config.steps();
            if (last || (config.evalEvery() > 0 && step % config.evalEvery() == 0)) {
                lastEval = evaluate();
                listener.onEval(step, lastEval);
            }
            if (checkpointer != null && (last || (config.checkpointEvery() > 0 && step % config.checkpointEvery() == 0))) {
                listener.onCheckpoint(step, checkpointer.save(step));
            }
        }
        long steps = config.steps() - completedSteps;
        double trainSeconds = trainNanos / 1e9;
        return new Result(steps, steps * tokensPerStep, lastLoss, lastEval,
                trainSeconds > 0 ? steps * tokensPerStep / trainSeconds : 0, trainSeconds);
    }

    /** Mean cross-entropy over {@code evalBatches} fixed validation batches. */
    public double evaluate() {
        int batches = Math.max(1, config.evalBatches());
        double sum = 0;
        for (int b = 0; b < batches; b++) {
            data.fill(TokenSource.Split.VALIDATION, b, 0, config.batchSize(), config.seqLen(), inputs, targets);
            sum += model.evaluate(inputs, targets);
        }
        return sum / batches;
    }
}
