package dev.tessera.worker.model;

import org.nd4j.linalg.api.ndarray.INDArray;

/** Token embedding: a row gather forward, a row scatter-add backward (pullRows is 100x slower, STACK.md). */
public final class Embedding {
    private final INDArray w;  // [V, C]
    private final INDArray dw; // [V, C]
    private final Mem wm;
    private final Mem dwm;
    private final int vocab;
    private final int dim;

    public Embedding(INDArray w, INDArray dw) {
        this.w = w;
        this.dw = dw;
        this.wm = new Mem(w);
        this.dwm = new Mem(dw);
        this.vocab = (int) w.size(0);
        this.dim = (int) w.size(1);
    }

    public Embedding(ParameterStore ps, String name) {
        this(ps.param(name), ps.grad(name));
    }

    /** tokens: [N] -> out: [N, C]. */
    public void forward(int[] tokens, INDArray out) {
        Mem o = new Mem(out);
        for (int n = 0; n < tokens.length; n++) {
            Mem.copy(wm, check(tokens[n]) * dim, o, n * dim, dim);
        }
    }

    /** dOut: [N, C]; dW[tokens[n]] += dOut[n]. Tokens repeat, hence add, not copy. */
    public void backward(int[] tokens, INDArray dOut) {
        Mem d = new Mem(dOut);
        for (int n = 0; n < tokens.length; n++) {
            Mem.axpy(1.0, d, n * dim, dwm, check(tokens[n]) * dim, dim);
        }
    }

    private int check(int t) {
        if (t < 0 || t >= vocab) {
            throw new IllegalArgumentException("token id " + t + " outside vocabulary [0, " + vocab + ")");
        }
        return t;
    }
}
