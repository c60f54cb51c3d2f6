package dev.tessera.worker.train;

import dev.tessera.optimizers.GradNorm;
import dev.tessera.optimizers.Optimizer;
import dev.tessera.worker.model.GradientSync;
import dev.tessera.worker.model.LossParts;
import dev.tessera.worker.model.ParameterSync;
import dev.tessera.worker.model.Transformer;

/**
 * The synchronous data-parallel step: forward and backward with the gradient reduction overlapping backward
 * (the model's {@link GradientSync}), wait for the rest of it, clip to the global norm, step this rank's
 * optimizer shard, and bring the replicas' parameters up to date ({@link ParameterSync#afterUpdate}). Every
 * replica ends the step with the same parameters as a single process would.
 */
public final class SynchronousStep implements TrainingStep {

    private final Transformer model;
    private final Optimizer optimizer;
    private final GradientSync gradients;
    private final ParameterSync parameters;
    private final double lossScale;
    private final double gradClip;

    /**
     * @param gradients  the sync installed in {@code model}: the step waits for it and takes the norm from it
     * @param parameters the parameter sync installed in {@code model}
     * @param lossScale  this replica's tokens / the global batch's
     * @param gradClip   the global-norm clip (0: none)
     */
    public SynchronousStep(Transformer model, Optimizer optimizer, GradientSync gradients, ParameterSync parameters,
                           double lossScale, double gradClip) {
        this.model = model;
        this.optimizer = optimizer;
        this.gradients = gradients;
        this.parameters = parameters;
        this.lossScale = lossScale;
        this.gradClip = gradClip;
    }

    @Override
    public Outcome run(long step, int[] inputs, int[] targets, double lr) {
        model.beginStep(step);
        LossParts loss = model.forwardBackward(inputs, targets, lossScale);
        long waitStart = System.nanoTime();
        gradients.finish();
        long gradientWait = System.nanoTime() - waitStart;
        double gradNorm = Math.sqrt(gradients.sumOfSquares(model.parameters().grads()));
        optimizer.step(step, lr, GradNorm.clipScale(gradNorm, gradClip));
        long gatherStart = System.nanoTime();
        parameters.afterUpdate(); // ZeRO-1/2: the updated shards are all-gathered, not overlapped
        return new Outcome(loss, gradNorm, gradientWait + System.nanoTime() - gatherStart, model.moeStats());
    }
}
