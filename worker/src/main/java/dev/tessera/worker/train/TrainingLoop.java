package dev.tessera.worker.train;

import dev.tessera.optimizers.GradNorm;
import dev.tessera.optimizers.LrSchedule;
import dev.tessera.optimizers.Optimizer;
import dev.tessera.worker.data.TokenSource;
import dev.tessera.worker.model.LossParts;
import dev.tessera.worker.model.Transformer;
import dev.tessera.worker.parallel.Mesh;
import dev.tessera.worker.parallel.ParallelContext;
import dev.tessera.worker.parallel.Sharding;
import java.io.IOException;

/**
 * The synchronous step loop of one replica: its slice of the global batch, forward+backward with the gradient
 * reduction overlapping backward, global-norm clip, optimizer, periodic validation and checkpoints. Everything
 * a step depends on is a function of (seed, step), so a run resumed from a checkpoint continues bit-identically,
 * and every replica of a data-parallel group computes the same update.
 */
public final class TrainingLoop {

    /** What a finished run reports for summary.json. */
    public record Result(long steps, long tokens, double finalLoss, double evalLoss,
                         double tokensPerSecond, double trainSeconds, double commWaitSeconds) {
    }

    private final Transformer model;
    private final TokenSource data;
    private final TrainConfig config;
    private final Optimizer optimizer;
    private final LrSchedule schedule;
    private final TrainingListener listener;
    private final Checkpointer checkpointer;
    private final ParallelContext parallel;
    private final Sharding sharding;
    private final Mesh.Range slice;
    private final double tokenShare;   // local tokens / global tokens
    private final double[] lossScratch = new double[1];
    private final int[] inputs;
    private final int[] targets;

    /**
     * {@code checkpointer} may be null: this replica does not write checkpoints (another one does).
     * {@code sharding} is how this replica's state is split (the optimizer was built over its shard).
     */
    public TrainingLoop(Transformer model, TokenSource data, TrainConfig config, Optimizer optimizer,
                        TrainingListener listener, Checkpointer checkpointer, ParallelContext parallel,
                        Sharding sharding) {
        this.model = model;
        this.data = data;
        this.config = config;
        this.optimizer = optimizer;
        this.schedule = new LrSchedule(config.lr(), config.minLr(), config.warmupSteps(), config.steps());
        this.listener = listener;
        this.checkpointer = checkpointer;
        this.parallel = parallel;
        this.sharding = sharding;
        this.slice = parallel.batchSlice(config.batchSize());
        if (model.batch() != slice.size() || model.seq() != config.seqLen()) {
            throw new IllegalArgumentException("model built for " + model.batch() + " x " + model.seq()
                    + " but this rank trains " + slice.size() + " x " + config.seqLen());
        }
        this.tokenShare = (double) slice.size() / config.batchSize();
        this.inputs = new int[slice.size() * config.seqLen()];
        this.targets = new int[inputs.length];
    }

    /** Runs steps {@code completedSteps+1 .. config.steps()}. */
    public Result run(long completedSteps) throws IOException {
        long tokensPerStep = (long) config.batchSize() * config.seqLen();
        double trainNanos = 0;
        double commWaitNanos = 0;
        double lastLoss = Double.NaN;
        double lastEval = Double.NaN;
        listener.onStart(completedSteps, config.steps());
        for (long step = completedSteps + 1; step <= config.steps(); step++) {
            long start = System.nanoTime();
            data.fill(TokenSource.Split.TRAIN, step, slice.start(), slice.size(), config.seqLen(), inputs, targets);
            LossParts loss = model.forwardBackward(inputs, targets, tokenShare, sharding.gradients());
            long waitStart = System.nanoTime();
            sharding.gradients().finish();
            long gradientWait = System.nanoTime() - waitStart;
            double gradNorm = Math.sqrt(sharding.gradients().sumOfSquares(model.parameters().grads()));
            double lr = schedule.at(step);
            optimizer.step(step, lr, GradNorm.clipScale(gradNorm, config.gradClip()));
            long gatherStart = System.nanoTime();
            sharding.parameters().afterUpdate(); // ZeRO-1/2: the updated shards are all-gathered, not overlapped
            long waited = gradientWait + System.nanoTime() - gatherStart;
            lastLoss = globalMean(loss.crossEntropy());
            double seconds = (System.nanoTime() - start) / 1e9;
            trainNanos += seconds * 1e9;
            commWaitNanos += waited;
            if (!Double.isFinite(lastLoss)) {
                throw new IllegalStateException("loss became " + lastLoss + " at step " + step
                        + "; lower optimizer.lr or set optimizer.grad_clip");
            }
            listener.onStep(new StepMetrics(step, lastLoss, loss.aux(), lr, gradNorm,
                    tokensPerStep / seconds, seconds, waited / 1e9));
            boolean last = step == config.steps();
            if (last || (config.evalEvery() > 0 && step % config.evalEvery() == 0)) {
                lastEval = evaluate();
                listener.onEval(step, lastEval);
            }
            if (last || (config.checkpointEvery() > 0 && step % config.checkpointEvery() == 0)) {
                if (checkpointer != null) {
                    listener.onCheckpoint(step, checkpointer.save(step));
                }
            }
        }
        long steps = config.steps() - completedSteps;
        double trainSeconds = trainNanos / 1e9;
        return new Result(steps, steps * tokensPerStep, lastLoss, lastEval,
                trainSeconds > 0 ? steps * tokensPerStep / trainSeconds : 0, trainSeconds, commWaitNanos / 1e9);
    }

    /** Mean cross-entropy over {@code evalBatches} fixed validation batches of the global batch size. */
    public double evaluate() {
        int batches = Math.max(1, config.evalBatches());
        double sum = 0;
        for (int b = 0; b < batches; b++) {
            data.fill(TokenSource.Split.VALIDATION, b, slice.start(), slice.size(), config.seqLen(), inputs, targets);
            sum += globalMean(model.evaluate(inputs, targets));
        }
        return sum / batches;
    }

    /** The global batch's mean from this replica's mean: the token-weighted sum over replicas. */
    private double globalMean(double localMean) {
        if (parallel.isSingle()) {
            return localMean;
        }
        lossScratch[0] = localMean * tokenShare;
        parallel.reducer().sumInPlace(lossScratch);
        return lossScratch[0];
    }
}
