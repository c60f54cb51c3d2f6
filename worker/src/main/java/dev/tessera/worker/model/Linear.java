package dev.tessera.worker.model;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * y = x W^T without bias, W stored [out, in] as in PyTorch. Everything goes through {@link Gemm} with
 * transpose flags into preallocated outputs: mmul allocates and transpose() views hit slow paths.
 * The gemms are timed as the profile kernel of the weight's role ({@link #profileKernel}).
 */
public final class Linear {
    final INDArray w;  // [out, in], a view into the parameter buffer
    final INDArray dw; // [out, in], a view into the gradient buffer
    private final int kernel; // ModelStepTimer kernel id

    public Linear(INDArray w, INDArray dw) {
        this(w, dw, "gemm");
    }

    private Linear(INDArray w, INDArray dw, String profileKernel) {
        this.w = w;
        this.dw = dw;
        this.kernel = ModelStepTimer.kernel(profileKernel);
    }

    public Linear(ParameterStore ps, String name) {
        this(ps.param(name), ps.grad(name), profileKernel(name));
    }

    /** One Linear over adjacent same-width weights (their outputs side by side): one gemm instead of several. */
    public static Linear stacked(ParameterStore ps, String... names) {
        INDArray[] pg = ps.stacked(names);
        return new Linear(pg[0], pg[1], profileKernel(names[0]));
    }

    /**
     * The profile's name for the gemms of weight {@code name}, from the layout's names: what the step's time is
     * usually asked about is attention projections against FFN gemms, dense or expert, and the lm_head.
     */
    static String profileKernel(String name) {
        if (name.contains(".self_attn.")) {
            return "attn.proj";
        }
        if (name.contains(".mlp.") || name.contains(".experts.")) {
            return "ffn.gemm";
        }
        if (name.startsWith("lm_head.")) {
            return "lm_head";
        }
        return "gemm";
    }

    public long in() {
        return w.size(1);
    }

    public long out() {
        return w.size(0);
    }

    /** x: [N, in] -> y: [N, out]; with {@code accumulate} y += x W^T (how residual adds are fused). */
    public void forward(INDArray x, INDArray y, boolean accumulate) {
        long t = ModelStepTimer.startKernel();
        Gemm.gemm(x, w, y, false, true, accumulate ? 1.0 : 0.0);
        ModelStepTimer.stopKernel(kernel, t);
    }

    /**
     * dy: [N, out]. dW += dy^T x (beta=1: grads accumulate in place in the gradient buffer, which the
     * step zeroes once). dx: [N, in] = dy W, or += when {@code accumulateDx}; null skips it.
     */
    public void backward(INDArray x, INDArray dy, INDArray dx, boolean accumulateDx) {
        long t = ModelStepTimer.startKernel();
        Gemm.gemm(dy, x, dw, true, false, 1.0);
        if (dx != null) {
            Gemm.gemm(dy, w, dx, false, false, accumulateDx ? 1.0 : 0.0);
        }
        ModelStepTimer.stopKernel(kernel, t);
    }

    /**
     * As {@link #backward(INDArray, INDArray, INDArray, boolean)} with dx first: {@code weightRead} runs between, once
     * W is not read again, before dW is written. The same bits; dx must not alias x or dy.
     */
    public void backwardInputFirst(INDArray x, INDArray dy, INDArray dx, boolean accumulateDx, Runnable weightRead) {
        long t = ModelStepTimer.startKernel();
        Gemm.gemm(dy, w, dx, false, false, accumulateDx ? 1.0 : 0.0);
        ModelStepTimer.stopKernel(kernel, t);
        weightRead.run();
        t = ModelStepTimer.startKernel();
        Gemm.gemm(dy, x, dw, true, false, 1.0);
        ModelStepTimer.stopKernel(kernel, t);
    }
}
