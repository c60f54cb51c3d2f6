package dev.tessera.worker.model;

import java.util.SplittableRandom;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * HyperRouter (Do et al., EMNLP 2023; ALGORITHMS.md 7.3): a MoE layer's router generated from a trainable embedding
 * e [1, C] by a fixed random hypernetwork, out = H2 ReLU(H1 e + b1) + b2 of size E*C + E, W_g = out[0, E*C) as
 * [E, C] and b_g = out[E*C, E*C + E); logits = x W_g^T + b_g. Only e learns. H (Linear(C, hidden), ReLU,
 * Linear(hidden, E*C + E)) is drawn from the job's seed and the layer as PyTorch's default Linear initialisation
 * draws, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and never stored: the same seed makes the same H on every rank and
 * every resume.
 */
final class HyperRouter {

    private final int dim;
    private final int hidden;
    private final int outSize;        // E*C + E
    private final long layerKey;
    private final double[] h1;        // [hidden, C]
    private final double[] b1;        // [hidden]
    private final double[] h2;        // [E*C + E, hidden]
    private final double[] b2;        // [E*C + E]
    private final double[] pre;       // [hidden] H1 e + b1
    private final double[] out;       // [E*C + E]
    private final double[] dOut;      // [E*C + E]
    private final double[] dPre;      // [hidden]
    private final Mem embedding;      // [1, C] parameter
    private final Mem dEmbedding;
    final INDArray weight;            // [E, C] the generated W_g, in the model's dtype
    final INDArray dWeight;           // [E, C] its gradient, summed into by the layer's backward
    final double[] bias;              // [E] the generated b_g
    final double[] dBias;             // [E]

    HyperRouter(ParameterStore ps, String embeddingName, int dim, int experts, int hidden, long layerKey) {
        this.dim = dim;
        this.hidden = hidden;
        this.outSize = Math.multiplyExact(experts, dim + 1);
        this.layerKey = layerKey;
        this.h1 = new double[Math.multiplyExact(hidden, dim)];
        this.b1 = new double[hidden];
        this.h2 = new double[Math.multiplyExact(outSize, hidden)];
        this.b2 = new double[outSize];
        this.pre = new double[hidden];
        this.out = new double[outSize];
        this.dOut = new double[outSize];
        this.dPre = new double[hidden];
        this.embedding = new Mem(ps.param(embeddingName));
        this.dEmbedding = new Mem(ps.grad(embeddingName));
        this.weight = Nd4j.create(ps.dataType(), experts, dim);
        this.dWeight = Nd4j.create(ps.dataType(), experts, dim);
        this.bias = new double[experts];
        this.dBias = new double[experts];
        draw(0);
    }

    /** Draws the fixed hypernetwork for the job's {@code seed}. */
    void draw(long seed) {
        SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L ^ layerKey ^ 0x4879706572L);
        uniform(rng, h1, 1.0 / Math.sqrt(dim));
        uniform(rng, b1, 1.0 / Math.sqrt(dim));
        uniform(rng, h2, 1.0 / Math.sqrt(hidden));
        uniform(rng, b2, 1.0 / Math.sqrt(hidden));
    }

    /** W_g and b_g from the embedding's current value; zeroes their gradients for the backward to come. */
    void generate() {
        for (int j = 0; j < hidden; j++) {
            double s = b1[j];
            for (int c = 0; c < dim; c++) {
                s += h1[j * dim + c] * embedding.get(c);
            }
            pre[j] = s;
        }
        Mem w = new Mem(weight);
        Mem dw = new Mem(dWeight);
        for (int o = 0; o < outSize; o++) {
            double s = b2[o];
            for (int j = 0; j < hidden; j++) {
                s += h2[o * hidden + j] * Math.max(0, pre[j]);
            }
            out[o] = s;
        }
        int weights = outSize - bias.length;
        for (int i = 0; i < weights; i++) {
            w.set(i, out[i]);
            dw.set(i, 0.0);
        }
        for (int e = 0; e < bias.length; e++) {
            bias[e] = out[weights + e];
            dBias[e] = 0;
        }
    }

    /** dEmbedding += the gradient of e, from the gradients of W_g and b_g the layer's backward summed. */
    void backward() {
        Mem dw = new Mem(dWeight);
        int weights = outSize - bias.length;
        for (int i = 0; i < weights; i++) {
            dOut[i] = dw.get(i);
        }
        System.arraycopy(dBias, 0, dOut, weights, bias.length);
        for (int j = 0; j < hidden; j++) {
            double s = 0;
            if (pre[j] > 0) { // ReLU
                for (int o = 0; o < outSize; o++) {
                    s += h2[o * hidden + j] * dOut[o];
                }
            }
            dPre[j] = s;
        }
        for (int c = 0; c < dim; c++) {
            double s = 0;
            for (int j = 0; j < hidden; j++) {
                s += h1[j * dim + c] * dPre[j];
            }
            dEmbedding.set(c, dEmbedding.get(c) + s);
        }
    }

    private static void uniform(SplittableRandom rng, double[] into, double bound) {
        for (int i = 0; i < into.length; i++) {
            into[i] = rng.nextDouble(-bound, bound);
        }
    }
}
