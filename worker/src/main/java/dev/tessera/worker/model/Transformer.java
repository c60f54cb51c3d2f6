package dev.tessera.worker.model;

import dev.tessera.worker.parallel.GradientSync;
import dev.tessera.worker.parallel.ParameterSync;
import dev.tessera.worker.parallel.ReplicaReducer;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The Llama/Mixtral-style decoder: embedding, blocks, final RMSNorm, untied lm_head. Parameters and grads
 * are views into one {@link ParameterStore}; every activation for the (batch, seq) shape is allocated in
 * the constructor and reused by every step.
 */
public final class Transformer {
    private final ModelConfig cfg;
    private final ParameterStore params;
    private final int batch;
    private final int seq;
    private final Embedding embedding;
    private final Block[] blocks;
    private final RMSNorm finalNorm;
    private final Linear lmHead;
    private final CrossEntropy crossEntropy;
    private final INDArray[] xs;   // [L+1] x [N, C]: input of each block, xs[L] the last block's output
    private final INDArray xf;     // [N, C] final norm output
    private final INDArray logits; // [N, V]
    private final INDArray dxf;    // [N, C]
    private final INDArray dRes;   // [N, C] gradient of the residual stream, updated in place block by block
    private final long[] blockGradStart; // first gradient element of each block: final once its backward ran
    private final long headGradStart;    // first gradient element of the final norm and lm_head
    private ParameterSync parameterSync = ParameterSync.RESIDENT;

    public Transformer(ModelConfig cfg, DataType dtype, int batch, int seq) {
        this(cfg, dtype, batch, seq, ReplicaReducer.LOCAL);
    }

    /**
     * A replica for {@code batch} local sequences; {@code replicas} sums the few numbers that must be global
     * (MoE routing statistics) over the data-parallel group.
     */
    public Transformer(ModelConfig cfg, DataType dtype, int batch, int seq, ReplicaReducer replicas) {
        this(cfg, dtype, batch, seq, replicas, FlatMemory.ND4J);
    }

    /** With the gradient buffer in {@code gradientMemory}. */
    public Transformer(ModelConfig cfg, DataType dtype, int batch, int seq, ReplicaReducer replicas,
                       FlatMemory gradientMemory) {
        if (seq > cfg.maxSeqLen()) {
            throw new IllegalArgumentException("seq " + seq + " exceeds max_seq_len " + cfg.maxSeqLen());
        }
        this.cfg = cfg;
        this.batch = batch;
        this.seq = seq;
        this.params = layout(cfg).build(dtype, gradientMemory);

        int n = Math.multiplyExact(batch, seq);
        embedding = new Embedding(params, "model.embed_tokens.weight");
        // Backward runs one block at a time, so all layers can share the [B*H, T, T] score scratch
        // (float64 only: the fused float32 kernel keeps its scores in per-thread scratch).
        INDArray scores = dtype == DataType.FLOAT ? null : Nd4j.create(dtype, (long) batch * cfg.nHeads(), seq, seq);
        blocks = new Block[cfg.nLayers()];
        for (int l = 0; l < blocks.length; l++) {
            blocks[l] = new Block(params, cfg, l, batch, seq, scores, replicas);
        }
        blockGradStart = new long[blocks.length];
        for (int l = 0; l < blocks.length; l++) {
            blockGradStart[l] = params.tensor("model.layers." + l + ".input_layernorm.weight").offset();
        }
        headGradStart = params.tensor("model.norm.weight").offset();
        finalNorm = new RMSNorm(params, "model.norm.weight", cfg.normEps(), n);
        lmHead = new Linear(params, "lm_head.weight");
        crossEntropy = new CrossEntropy(dtype, n, cfg.vocabSize());
        xs = new INDArray[blocks.length + 1];
        for (int l = 0; l < xs.length; l++) {
            xs[l] = Nd4j.create(dtype, n, cfg.dModel());
        }
        xf = Nd4j.create(dtype, n, cfg.dModel());
        logits = Nd4j.create(dtype, n, cfg.vocabSize());
        dxf = Nd4j.create(dtype, n, cfg.dModel());
        dRes = Nd4j.create(dtype, n, cfg.dModel());
    }

    /** The parameter tensors of {@code cfg} in buffer order, without allocating them (for planning). */
    public static ParameterStore.Builder layout(ModelConfig cfg) {
        return layout(cfg, ParameterStore.builder());
    }

    /** Declares the parameter tensors of {@code cfg} into {@code b}, in buffer order. */
    public static <L extends ParameterStore.Layout> L layout(ModelConfig cfg, L b) {
        b.add("model.embed_tokens.weight", cfg.vocabSize(), cfg.dModel());
        for (int l = 0; l < cfg.nLayers(); l++) {
            Block.register(b, cfg, l);
        }
        b.add("model.norm.weight", cfg.dModel());
        b.add("lm_head.weight", cfg.vocabSize(), cfg.dModel());
        return b;
    }

    /**
     * The units the model brackets with {@link ParameterSync#acquire}/{@link ParameterSync#release}, as element
     * offsets into the flat buffers: unit 0 is the embedding, unit {@code 1 + l} block {@code l}, the last unit the
     * final norm with lm_head; {@code units + 1} offsets ending at {@code numel}.
     */
    public long[] unitBounds() {
        long[] bounds = new long[blocks.length + 3];
        for (int l = 0; l < blocks.length; l++) {
            bounds[l + 1] = blockGradStart[l];
        }
        bounds[blocks.length + 1] = headGradStart;
        bounds[blocks.length + 2] = params.numel();
        return bounds;
    }

    /** Where parameters live between uses (ZeRO-3 gathers them); resident unless set. */
    public void useParameterSync(ParameterSync sync) {
        this.parameterSync = sync;
    }

    public ModelConfig config() {
        return cfg;
    }

    public ParameterStore parameters() {
        return params;
    }

    public int batch() {
        return batch;
    }

    public int seq() {
        return seq;
    }

    /**
     * Deterministic init from {@code seed} alone: each tensor draws from its own SplittableRandom seeded by
     * (seed, tensor name), so the result depends neither on threads nor on the buffer layout.
     * N(0, 0.02) for embeddings, linears and routers; 1 for norm gains; N(0, 0.02/sqrt(2 L)) for the
     * projections that write into the residual stream (o_proj, down_proj / w2), as GPT-2 does.
     */
    public void initialize(long seed) {
        double residualStd = 0.02 / Math.sqrt(2.0 * cfg.nLayers());
        for (ParameterStore.Tensor t : params.tensors()) {
            String name = t.name();
            Mem m = new Mem(params.param(name));
            int n = Math.toIntExact(t.numel());
            if (name.endsWith("norm.weight") || name.endsWith("layernorm.weight")) {
                for (int i = 0; i < n; i++) {
                    m.set(i, 1.0);
                }
                continue;
            }
            double std = name.endsWith("o_proj.weight") || name.endsWith("down_proj.weight")
                    || name.endsWith(".w2.weight") ? residualStd : 0.02;
            SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L ^ name.hashCode());
            for (int i = 0; i < n; i++) {
                m.set(i, std * rng.nextGaussian());
            }
        }
    }

    /** Zeroes the grads, then forward and backward of loss = mean CE + auxCoef * sum of MoE aux losses. */
    public LossParts forwardBackward(int[] inputs, int[] targets) {
        return forwardBackward(inputs, targets, 1.0, GradientSync.NONE);
    }

    /**
     * As {@link #forwardBackward(int[], int[])} for one replica of several: the cross-entropy gradient is scaled
     * by {@code lossScale} (local tokens / global tokens, so that summing the replicas' gradients gives the
     * gradient of the global mean), and {@code sync} hears, layer by layer from the last, which gradients are final.
     */
    public LossParts forwardBackward(int[] inputs, int[] targets, double lossScale, GradientSync sync) {
        long t = ModelStepTimer.start();
        sync.zero(params);
        ModelStepTimer.stop("zero_grads", t);
        LossParts parts = forward(inputs, targets, true);
        int head = blocks.length + 1;
        t = ModelStepTimer.start();
        INDArray dLogits = crossEntropy.backward(lossScale);
        t = ModelStepTimer.stop("cross_entropy.bwd", t);
        lmHead.backward(xf, dLogits, dxf, false);
        t = ModelStepTimer.stop("lm_head.bwd", t);
        finalNorm.backward(xs[blocks.length], dxf, dRes, false);
        ModelStepTimer.stop("rmsnorm.bwd", t);
        parameterSync.release(head);
        sync.ready(headGradStart);
        for (int l = blocks.length - 1; l >= 0; l--) {
            parameterSync.acquire(l + 1, l > 0 ? l : -1); // the embedding's backward needs no parameters
            blocks[l].backward(xs[l], dRes, cfg.auxCoef());
            parameterSync.release(l + 1);
            sync.ready(blockGradStart[l]);
        }
        t = ModelStepTimer.start();
        embedding.backward(inputs, dRes);
        ModelStepTimer.stop("embedding.bwd", t);
        sync.ready(0);
        return parts;
    }

    /** Forward only: mean cross-entropy. */
    public double evaluate(int[] inputs, int[] targets) {
        return forward(inputs, targets).crossEntropy();
    }

    /** Forward only, both loss parts (what forwardBackward differentiates is {@code total(auxCoef)}). */
    public LossParts forward(int[] inputs, int[] targets) {
        return forward(inputs, targets, false);
    }

    /** With {@code backwardFollows}, the head's parameters stay in place and the last block's are fetched. */
    private LossParts forward(int[] inputs, int[] targets, boolean backwardFollows) {
        if (inputs.length != batch * seq) {
            throw new IllegalArgumentException("expected " + batch * seq + " inputs, got " + inputs.length);
        }
        int head = blocks.length + 1;
        parameterSync.acquire(0, 1);
        long t = ModelStepTimer.start();
        embedding.forward(inputs, xs[0]);
        ModelStepTimer.stop("embedding.fwd", t);
        parameterSync.release(0);
        double aux = 0;
        for (int l = 0; l < blocks.length; l++) {
            parameterSync.acquire(l + 1, l + 2);
            aux += blocks[l].forward(xs[l], xs[l + 1]);
            parameterSync.release(l + 1);
        }
        parameterSync.acquire(head, backwardFollows ? blocks.length : -1);
        t = ModelStepTimer.start();
        finalNorm.forward(xs[blocks.length], xf);
        t = ModelStepTimer.stop("rmsnorm.fwd", t);
        lmHead.forward(xf, logits, false);
        t = ModelStepTimer.stop("lm_head.fwd", t);
        double ce = crossEntropy.forward(logits, targets);
        ModelStepTimer.stop("cross_entropy.fwd", t);
        if (!backwardFollows) {
            parameterSync.release(head);
        }
        return new LossParts(ce, aux);
    }
}
