package dev.tessera.comm.control;

/** Worker to coordinator after every optimizer step: the global batch's loss and the step's figures. */
public final class StepReport implements ControlMessage {
    public int rank;
    public long step;
    public double loss;
    public double auxLoss;
    public double lr;
    public double gradNorm;
    public double tokensPerSecond;
    public double stepSeconds;
    /** Seconds of this step spent waiting for gradient reductions after backward (not overlapped). */
    public double exposedCommSeconds;
    /** Seconds of this step that attention spent waiting for the sequence-parallel ranks' K|V (or their exchange). */
    public double attentionWaitSeconds;
    /** Data bytes this rank handed to the transport during this step (gradients, compressed or not, and the rest). */
    public long wireBytes;
    /** Experts per MoE layer (0: no MoE layer). */
    public int moeExperts;
    /** Per MoE layer: block, dropped fraction, aux loss, z-loss, each expert's load (the worker's MoeStats). */
    public double[] moeLayers;
    /**
     * L-GreCo's choice, when one came into force in this step: each compressed layer's name and its setting (Top-K
     * density, QSGD bits); empty on every other step.
     */
    public String[] choiceLayers = new String[0];
    public double[] choiceValues = new double[0];

    public StepReport() {
    }

    public StepReport(int rank, long step, double loss, double auxLoss, double lr, double gradNorm,
                      double tokensPerSecond, double stepSeconds, double exposedCommSeconds,
                      double attentionWaitSeconds, long wireBytes, int moeExperts, double[] moeLayers) {
        this.rank = rank;
        this.step = step;
        this.loss = loss;
        this.auxLoss = auxLoss;
        this.lr = lr;
        this.gradNorm = gradNorm;
        this.tokensPerSecond = tokensPerSecond;
        this.stepSeconds = stepSeconds;
        this.exposedCommSeconds = exposedCommSeconds;
        this.attentionWaitSeconds = attentionWaitSeconds;
        this.wireBytes = wireBytes;
        this.moeExperts = moeExperts;
        this.moeLayers = moeLayers;
    }
}
