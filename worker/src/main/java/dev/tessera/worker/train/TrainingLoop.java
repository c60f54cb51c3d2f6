package dev.tessera.worker.train;

import dev.tessera.optimizers.LrSchedule;
import dev.tessera.worker.data.TokenSource;
import dev.tessera.worker.model.ReplicaReducer;
import dev.tessera.worker.model.Transformer;
import dev.tessera.worker.parallel.Mesh;
import java.io.IOException;
import java.util.Map;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * The step loop of one replica: its slice of the global batch, one {@link TrainingStep} per step (forward,
 * backward, gradient sync, clip, optimizer: synchronous or not), the learning-rate schedule, metrics, periodic
 * validation and checkpoints. Everything a step depends on is a function of (seed, step), so a run resumed from
 * a checkpoint continues bit-identically, and every replica of a data-parallel group computes the same update.
 */
public final class TrainingLoop {

    /** What a finished run reports for summary.json. */
    public record Result(long steps, long tokens, double finalLoss, double evalLoss,
                         double tokensPerSecond, double trainSeconds, double commWaitSeconds) {
    }

    private final Transformer model;
    private final TokenSource data;
    private final TrainConfig config;
    private final TrainingStep trainingStep;
    private final LrSchedule schedule;
    private final TrainingListener listener;
    private final Checkpointer checkpointer;
    private final ReplicaReducer replicas;
    private final Mesh.Range slice;
    private final double tokenShare;   // local tokens / global tokens
    private final double[] lossScratch = new double[1];
    private final DeferredSum stepLoss;
    private final long tokensPerStep;
    private double trainNanos;         // run(): the reported steps' time and comm wait, and the last global loss
    private double commWaitNanos;
    private double lastLoss = Double.NaN;
    private final int[] positions;     // this replica's positions of each sequence; null: all of them
    private final int[] wholeInputs;   // [B_local, T] whole sequences, labels shifted on them
    private final int[] wholeTargets;
    private final int[] inputs;        // [B_local, Tl] this replica's positions of them
    private final int[] targets;
    private LongSupplier bytesSent = () -> 0; // this process's data bytes handed to the transport, ever
    private Supplier<Map<String, Double>> compressionChoice = Map::of;
    private long bytesSentBefore;

    /**
     * {@code slice} is the part of the global batch this replica trains on, and {@code replicas} sums over the
     * replicas that share the batch; {@code stepLoss} sums each step's loss over them in the background, on a
     * channel of its own. {@code checkpointer} may be null: this replica does not write checkpoints
     * (another one does).
     */
    public TrainingLoop(Transformer model, TokenSource data, TrainConfig config, Mesh.Range slice,
                        ReplicaReducer replicas, DeferredSum stepLoss, TrainingStep trainingStep,
                        TrainingListener listener, Checkpointer checkpointer) {
        this.model = model;
        this.data = data;
        this.config = config;
        this.trainingStep = trainingStep;
        this.schedule = new LrSchedule(config.lr(), config.minLr(), config.warmupSteps(), config.steps());
        this.listener = listener;
        this.checkpointer = checkpointer;
        this.replicas = replicas;
        this.stepLoss = stepLoss;
        this.tokensPerStep = (long) config.batchSize() * config.seqLen();
        this.slice = slice;
        int[] positions = model.sequenceShard().positions();
        if (model.batch() != slice.size() || positions.length > config.seqLen()
                || (positions.length > 0 && positions[positions.length - 1] >= config.seqLen())) {
            throw new IllegalArgumentException("model built for " + model.batch() + " x " + model.seq()
                    + " tokens up to position " + positions[positions.length - 1] + " but this rank trains "
                    + slice.size() + " x " + config.seqLen());
        }
        this.tokenShare = tokenShare(slice, model.seq(), config);
        this.positions = positions.length == config.seqLen() ? null : positions;
        this.wholeInputs = new int[slice.size() * config.seqLen()];
        this.wholeTargets = new int[wholeInputs.length];
        this.inputs = this.positions == null ? wholeInputs : new int[slice.size() * positions.length];
        this.targets = this.positions == null ? wholeTargets : new int[inputs.length];
    }

    /** Reports each step's growth of {@code bytesSent} (a communicator's count) as the step's wire bytes. */
    public void countBytesSent(LongSupplier bytesSent) {
        this.bytesSent = bytesSent;
        this.bytesSentBefore = bytesSent.getAsLong();
    }

    /** Reports, with each step, a compression choice that came into force in it ({@code supplier} gives it once). */
    public void reportCompressionChoice(Supplier<Map<String, Double>> supplier) {
        this.compressionChoice = supplier;
    }

    private long sentSince() {
        long now = bytesSent.getAsLong();
        long since = now - bytesSentBefore;
        bytesSentBefore = now;
        return since;
    }

    /**
     * This replica's tokens / the global batch's: the scale of its loss in the global mean, so that the gradients'
     * sum over every rank is the global mean's gradient (ALGORITHMS.md 8.0: summed over the sequence-parallel
     * ranks, averaged over the data-parallel ones). {@code seq}: the tokens of each sequence this replica holds.
     */
    public static double tokenShare(Mesh.Range slice, int seq, TrainConfig config) {
        return (double) slice.size() * seq / ((double) config.batchSize() * config.seqLen());
    }

    /**
     * This replica's sequences of {@code split}'s batch {@code index}. Labels are shifted on the whole sequence
     * first, then the replica keeps its positions of both: the last token of a segment takes its label from the
     * next segment (ALGORITHMS.md 8.0).
     */
    private void fill(TokenSource.Split split, long index) {
        data.fill(split, index, slice.start(), slice.size(), config.seqLen(), wholeInputs, wholeTargets);
        if (positions == null) {
            return;
        }
        int seq = config.seqLen();
        for (int b = 0; b < slice.size(); b++) {
            for (int t = 0; t < positions.length; t++) {
                inputs[b * positions.length + t] = wholeInputs[b * seq + positions[t]];
                targets[b * positions.length + t] = wholeTargets[b * seq + positions[t]];
            }
        }
    }

    /**
     * Runs steps {@code completedSteps+1 .. config.steps()}. A step's global loss is summed while the next step
     * computes ({@link DeferredSum}), so its metrics are reported after that step; a step that evaluates,
     * checkpoints or ends the run waits for its own sum first, so the reports keep their order.
     */
    public Result run(long completedSteps) throws IOException {
        double lastEval = Double.NaN;
        trainNanos = 0;
        commWaitNanos = 0;
        lastLoss = Double.NaN;
        listener.onStart(completedSteps, config.steps());
        Summing summing = null;
        for (long step = completedSteps + 1; step <= config.steps(); step++) {
            long start = System.nanoTime();
            fill(TokenSource.Split.TRAIN, step);
            double lr = schedule.at(step);
            TrainingStep.Outcome outcome = trainingStep.run(step, inputs, targets, lr);
            Summing ran = new Summing(step, outcome, lr, System.nanoTime() - start,
                    model.takeAttentionWaitNanos() / 1e9, sentSince(), compressionChoice.get());
            listener.onUpdate(step);
            if (summing != null) {
                report(summing);
            }
            stepLoss.start(outcome.loss().crossEntropy() * tokenShare);
            summing = ran;
            boolean last = step == config.steps();
            boolean evaluates = last || (config.evalEvery() > 0 && step % config.evalEvery() == 0);
            boolean checkpoints = last || (config.checkpointEvery() > 0 && step % config.checkpointEvery() == 0);
            if (evaluates || checkpoints) {
                report(summing);
                summing = null;
            }
            if (evaluates) {
                double[] eval = new double[1];
                trainingStep.withEvaluatedParameters(() -> eval[0] = evaluate());
                lastEval = eval[0];
                listener.onEval(step, lastEval);
            }
            if (checkpoints && checkpointer != null) {
                listener.onCheckpoint(step, checkpointer.save(step));
            }
        }
        long steps = config.steps() - completedSteps;
        double trainSeconds = trainNanos / 1e9;
        return new Result(steps, steps * tokensPerStep, lastLoss, lastEval,
                trainSeconds > 0 ? steps * tokensPerStep / trainSeconds : 0, trainSeconds, commWaitNanos / 1e9);
    }

    /** A step whose global loss is being summed, with what it reports once the sum is in. */
    private record Summing(long step, TrainingStep.Outcome outcome, double lr, long ranNanos,
                           double attentionWaitSeconds, long wireBytes, Map<String, Double> compressionChoice) {
    }

    /**
     * Waits for {@code s}'s loss sum and reports the step. The wait is communication, and the step's: it counts in
     * its time and its comm wait. The last step also counts the bytes of its own sum, which no later step will.
     */
    private void report(Summing s) {
        long start = System.nanoTime();
        double loss = stepLoss.await();
        long summed = System.nanoTime() - start;
        double seconds = (s.ranNanos() + summed) / 1e9;
        long waited = s.outcome().commWaitNanos() + summed;
        long wireBytes = s.wireBytes() + (s.step() == config.steps() ? sentSince() : 0);
        trainNanos += s.ranNanos() + summed;
        commWaitNanos += waited;
        lastLoss = loss;
        if (!Double.isFinite(loss)) {
            throw new IllegalStateException("loss became " + loss + " at step " + s.step()
                    + "; lower optimizer.lr or set optimizer.grad_clip");
        }
        listener.onStep(new StepMetrics(s.step(), loss, s.outcome().loss().aux(), s.lr(), s.outcome().gradNorm(),
                tokensPerStep / seconds, seconds, waited / 1e9, s.attentionWaitSeconds(), wireBytes,
                s.outcome().moe(), s.compressionChoice()));
    }

    /** Mean cross-entropy over {@code evalBatches} fixed validation batches of the global batch size. */
    public double evaluate() {
        int batches = Math.max(1, config.evalBatches());
        double sum = 0;
        for (int b = 0; b < batches; b++) {
            fill(TokenSource.Split.VALIDATION, b);
            sum += globalMean(model.evaluate(inputs, targets));
        }
        return sum / batches;
    }

    /** The global batch's mean from this replica's mean: the token-weighted sum over replicas. */
    private double globalMean(double localMean) {
        if (replicas == ReplicaReducer.LOCAL) {
            return localMean;
        }
        lossScratch[0] = localMean * tokenShare;
        replicas.sumInPlace(lossScratch);
        return lossScratch[0];
    }
}
