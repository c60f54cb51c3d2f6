package dev.tessera.worker.model;

import dev.tessera.optimizers.kernel.KernelThreads;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Fused log-softmax + NLL over logits [N, V], mean over the N targets. Forward leaves softmax(logits) in
 * the gradient buffer, so backward is one subtract-and-scale pass: dlogits = (p - onehot(t)) * scale / N.
 */
public final class CrossEntropy {
    private static final int KERNEL = ModelStepTimer.kernel("cross_entropy");
    private final int rows;
    private final int vocab;
    private final INDArray dLogits; // [N, V]: probabilities after forward, gradients after backward
    private final double[] rowLoss; // [N] summed in row order, so the mean does not depend on threads
    private int[] lastTargets;

    public CrossEntropy(DataType dt, int rows, int vocab) {
        this(dt, rows, vocab, Activations.own());
    }

    public CrossEntropy(DataType dt, int rows, int vocab, Activations activations) {
        this.rows = rows;
        this.vocab = vocab;
        this.dLogits = activations.array(dt, rows, vocab);
        this.rowLoss = activations.doubles(rows);
    }

    /** logits: [N, V], targets: [N] -> mean over rows of -log softmax(logits)[target]. */
    public double forward(INDArray logits, int[] targets) {
        if (targets.length != rows) {
            throw new IllegalArgumentException("expected " + rows + " targets, got " + targets.length);
        }
        for (int t : targets) {
            if (t < 0 || t >= vocab) {
                throw new IllegalArgumentException("target id " + t + " outside vocabulary [0, " + vocab + ")");
            }
        }
        long t = ModelStepTimer.startKernel();
        Mem lg = new Mem(logits);
        Mem p = new Mem(dLogits);
        KernelThreads.forRange(rows, (part, from, to) -> {
            float[] lanes = Mem.lanes();
            for (int n = from; n < to; n++) {
                int o = n * vocab;
                double lse = lg.f32 && p.f32 ? softmaxRowF(lg, p, o, lanes) : softmaxRow(lg, p, o);
                rowLoss[n] = lse - lg.get(o + targets[n]);
            }
        });
        double total = 0;
        for (double l : rowLoss) {
            total += l;
        }
        lastTargets = targets;
        ModelStepTimer.stopKernel(KERNEL, t);
        return total / rows;
    }

    /** Turns the stored probabilities into dLoss/dlogits for loss = scale * mean CE; returns [N, V]. */
    public INDArray backward(double scale) {
        long t = ModelStepTimer.startKernel();
        Mem d = new Mem(dLogits);
        double s = scale / rows;
        KernelThreads.forRange(rows, (part, from, to) -> {
            int i = from * vocab;
            int n = to * vocab;
            if (d.f32) {
                FloatVector vs = FloatVector.broadcast(Mem.S, (float) s);
                for (int b = i + Mem.S.loopBound(n - i); i < b; i += Mem.L) {
                    d.put(d.vec(i).mul(vs), i);
                }
            }
            for (; i < n; i++) {
                d.set(i, d.get(i) * s);
            }
        });
        for (int r = 0; r < rows; r++) {
            d.add(r * vocab + lastTargets[r], -s);
        }
        ModelStepTimer.stopKernel(KERNEL, t);
        return dLogits;
    }

    /** p[o..o+V) = softmax(lg[o..o+V)); returns the row's logsumexp. */
    private double softmaxRow(Mem lg, Mem p, int o) {
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < vocab; j++) {
            max = Math.max(max, lg.get(o + j));
        }
        double sum = 0;
        for (int j = 0; j < vocab; j++) {
            double e = Math.exp(lg.get(o + j) - max);
            p.set(o + j, e);
            sum += e;
        }
        for (int j = 0; j < vocab; j++) {
            p.set(o + j, p.get(o + j) / sum);
        }
        return max + Math.log(sum);
    }

    private double softmaxRowF(Mem lg, Mem p, int o, float[] lanes) {
        int b = Mem.S.loopBound(vocab);
        int j = 0;
        FloatVector vmax = FloatVector.broadcast(Mem.S, Float.NEGATIVE_INFINITY);
        for (; j < b; j += Mem.L) {
            vmax = vmax.max(lg.vec(o + j));
        }
        float max = vmax.reduceLanes(VectorOperators.MAX);
        for (; j < vocab; j++) {
            max = Math.max(max, lg.getF(o + j));
        }
        FloatVector vneg = FloatVector.broadcast(Mem.S, -max);
        FloatVector vsum = FloatVector.zero(Mem.S);
        for (j = 0; j < b; j += Mem.L) {
            FloatVector e = Mem.exp(lg.vec(o + j).add(vneg));
            p.put(e, o + j);
            vsum = vsum.add(e);
        }
        vsum.intoArray(lanes, 0);
        double sum = Mem.sumLanes(lanes);
        for (; j < vocab; j++) {
            float e = (float) Math.exp(lg.getF(o + j) - max);
            p.setF(o + j, e);
            sum += e;
        }
        FloatVector vinv = FloatVector.broadcast(Mem.S, (float) (1.0 / sum));
        for (j = 0; j < b; j += Mem.L) {
            p.put(p.vec(o + j).mul(vinv), o + j);
        }
        for (; j < vocab; j++) {
            p.setF(o + j, (float) (p.getF(o + j) / sum));
        }
        return max + Math.log(sum);
    }
}
