package dev.tessera.worker.model;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The Llama/Mixtral-style decoder: embedding, blocks, final RMSNorm, untied lm_head. Parameters and grads
 * are views into one {@link ParameterStore}; every activation for the (batch, seq) shape is allocated in
 * the constructor and reused by every step. The model computes one replica's share alone; how replicas
 * exchange K/V, tokens, gradients and parameters is installed from outside (the parallel package's
 * {@code Parallelize}) through the small interfaces of this package, and every layer meets them in one
 * {@link LayerHook}.
 */
public final class Transformer {
    private final ModelConfig cfg;
    private final ParameterStore params;
    private final int batch;
    private final int seq;
    private final SequenceShard sequence;
    private long attentionWaitTaken;
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
    private final long[] unitBounds; // the layers LayerHook brackets, as offsets into the flat buffers
    private final long[] ffnStarts;  // per unit, where its FFN half starts (its end where it has none)
    private final LayerHook hook;
    private final Block.Progress[] progress; // per block: tells the hook how far its backward is
    private final RecomputePolicy recompute;
    // The shared buffers still hold this block's activations when backward reaches it: forward ran it last of
    // the recomputing blocks, and the head has buffers of its own. So it is the one block not run twice.
    private final int lastRecomputed;
    private final Activations kept = Activations.own();            // every layer's own buffers
    private final Activations recomputed = Activations.shared();   // one set for the recomputing blocks

    /** A replica for {@code batch} sequences of {@code seq} tokens. */
    public Transformer(ModelConfig cfg, DataType dtype, int batch, int seq) {
        this(cfg, dtype, batch, seq, FlatMemory.ND4J);
    }

    /**
     * With the gradient buffer in {@code gradientMemory}: the one thing about parallelism that must be known
     * before the buffers exist (the data-parallel group's collectives read symmetric memory directly).
     */
    public Transformer(ModelConfig cfg, DataType dtype, int batch, int seq, FlatMemory gradientMemory) {
        this(cfg, dtype, batch, seq, gradientMemory, RecomputePolicy.NONE);
    }

    /** With the blocks of {@code recompute} recomputing their activations in backward (activation checkpointing). */
    public Transformer(ModelConfig cfg, DataType dtype, int batch, int seq, FlatMemory gradientMemory,
                       RecomputePolicy recompute) {
        this(cfg, dtype, batch, seq, FlatMemory.ND4J, gradientMemory, recompute);
    }

    /**
     * With the parameter buffer in {@code parameterMemory} too: ZeRO-3 keeps it in reserved pages, of which a rank
     * writes only its shard ({@link #initialize(long, long, long)}) and what it gathers.
     */
    public Transformer(ModelConfig cfg, DataType dtype, int batch, int seq, FlatMemory parameterMemory,
                       FlatMemory gradientMemory, RecomputePolicy recompute) {
        this(cfg, dtype, batch, seq, parameterMemory, gradientMemory, recompute, ExpertShard.all(cfg.nExperts()));
    }

    /**
     * Holding only the experts of {@code held} in every MoE layer (expert parallelism): the other experts'
     * parameters, gradients and optimizer state are on the other ranks of the expert group.
     */
    public Transformer(ModelConfig cfg, DataType dtype, int batch, int seq, FlatMemory parameterMemory,
                       FlatMemory gradientMemory, RecomputePolicy recompute, ExpertShard held) {
        this(cfg, dtype, batch, parameterMemory, gradientMemory, recompute,
                new ModelShard(held, SequenceShard.whole(seq)));
    }

    /**
     * Computing only what {@code shard} gives this rank: its experts of every MoE layer, and its tokens of each of
     * {@code batch} sequences (sequence parallelism: {@link #seq} is then the rank's tokens per sequence).
     */
    public Transformer(ModelConfig cfg, DataType dtype, int batch, FlatMemory parameterMemory,
                       FlatMemory gradientMemory, RecomputePolicy recompute, ModelShard shard) {
        int[] positions = shard.sequence().positions();
        int seq = positions.length;
        if (seq > 0 && positions[seq - 1] >= cfg.maxSeqLen()) {
            throw new IllegalArgumentException("position " + positions[seq - 1] + " is past max_seq_len "
                    + cfg.maxSeqLen());
        }
        ExpertShard held = shard.experts();
        this.cfg = cfg;
        this.batch = batch;
        this.seq = seq;
        this.sequence = shard.sequence();
        this.recompute = recompute;
        this.params = layout(cfg, held, ParameterStore.builder()).build(dtype, parameterMemory, gradientMemory);

        int n = Math.multiplyExact(batch, seq);
        embedding = new Embedding(params, "model.embed_tokens.weight");
        // Backward runs one block at a time, so all layers can share the [B*H, T, T] score scratch
        // (float64 only: the fused float32 kernel keeps its scores in per-thread scratch).
        INDArray scores = dtype == DataType.FLOAT || !shard.sequence().isWhole() ? null
                : kept.array(dtype, (long) batch * cfg.nHeads(), seq, seq);
        blocks = new Block[cfg.nLayers()];
        int last = -1;
        for (int l = 0; l < blocks.length; l++) {
            blocks[l] = new Block(params, cfg, l, batch, scores, recompute.recomputes(l) ? recomputed : kept, shard);
            last = recompute.recomputes(l) ? l : last;
        }
        lastRecomputed = last;
        unitBounds = new long[blocks.length + 3];
        String[] kinds = new String[blocks.length + 2];
        kinds[0] = "embedding";
        for (int l = 0; l < blocks.length; l++) {
            unitBounds[l + 1] = params.tensor(Block.prefix(l) + ".input_layernorm.weight").offset();
            kinds[l + 1] = blocks[l].isMoe() ? "moe_block" : "block";
        }
        unitBounds[blocks.length + 1] = params.tensor("model.norm.weight").offset();
        unitBounds[blocks.length + 2] = params.numel();
        kinds[blocks.length + 1] = "head";
        hook = new LayerHook(unitBounds, kinds);
        ffnStarts = Arrays.copyOfRange(unitBounds, 1, unitBounds.length);
        progress = new Block.Progress[blocks.length];
        for (int l = 0; l < blocks.length; l++) {
            int unit = l + 1;
            long ffnFrom = Block.ffnFrom(params, l);
            ffnStarts[unit] = ffnFrom;
            if (blocks[l].isMoe()) { // its experts report nothing before the FFN half is through
                progress[l] = new Block.Progress(() -> hook.attentionRecomputed(unit), () -> { }, () -> { },
                        () -> hook.ffnDone(unit, ffnFrom));
            } else {
                long downFrom = Block.downFrom(params, l);
                long gateUpFrom = Block.gateUpFrom(params, l);
                progress[l] = new Block.Progress(() -> hook.attentionRecomputed(unit),
                        () -> hook.downDone(unit, downFrom),
                        () -> hook.weightsRead(unit, gateUpFrom), () -> hook.ffnDone(unit, ffnFrom));
            }
        }
        kept.nextLayer();
        finalNorm = new RMSNorm(params, "model.norm.weight", cfg.normEps(), n, kept);
        lmHead = new Linear(params, "lm_head.weight");
        crossEntropy = new CrossEntropy(dtype, n, cfg.vocabSize(), kept);
        xs = new INDArray[blocks.length + 1];
        for (int l = 0; l < xs.length; l++) {
            xs[l] = kept.array(dtype, n, cfg.dModel());
        }
        xf = kept.array(dtype, n, cfg.dModel());
        logits = kept.array(dtype, n, cfg.vocabSize());
        dxf = kept.array(dtype, n, cfg.dModel());
        dRes = kept.array(dtype, n, cfg.dModel());
    }

    /** The parameter tensors of {@code cfg} in buffer order, without allocating them (for planning). */
    public static ParameterStore.Builder layout(ModelConfig cfg) {
        return layout(cfg, ParameterStore.builder());
    }

    /** Declares the parameter tensors of {@code cfg} into {@code b}, in buffer order. */
    public static <L extends ParameterStore.Layout> L layout(ModelConfig cfg, L b) {
        return layout(cfg, ExpertShard.all(cfg.nExperts()), b);
    }

    /**
     * As {@link #layout(ModelConfig, ParameterStore.Layout)}, with only the experts of {@code held}. Holding only
     * some experts (expert parallelism), the dense tensors come first, in model order, and the held experts after
     * them: the two are replicated over different groups, and each group's ZeRO shards one contiguous region.
     */
    public static <L extends ParameterStore.Layout> L layout(ModelConfig cfg, ExpertShard held, L b) {
        boolean apart = held.isPartOf(cfg.nExperts());
        ParameterStore.Layout first = apart ? only(b, false) : b;
        first.add("model.embed_tokens.weight", cfg.vocabSize(), cfg.dModel());
        for (int l = 0; l < cfg.nLayers(); l++) {
            Block.register(first, cfg, l, held);
        }
        first.add("model.norm.weight", cfg.dModel());
        first.add("lm_head.weight", cfg.vocabSize(), cfg.dModel());
        if (apart) {
            ParameterStore.Layout experts = only(b, true);
            for (int l = 0; l < cfg.nLayers(); l++) {
                Block.register(experts, cfg, l, held);
            }
        }
        return b;
    }

    /** {@code b}, passed only the expert tensors or only the others. */
    private static ParameterStore.Layout only(ParameterStore.Layout b, boolean experts) {
        return new ParameterStore.Layout() {
            @Override
            public ParameterStore.Layout add(String name, long... shape) {
                if (ExpertShard.isExpertTensor(name) == experts) {
                    b.add(name, shape);
                }
                return this;
            }
        };
    }

    /**
     * The layers the model brackets with {@link ParameterSync#acquire}/{@link ParameterSync#release}, as element
     * offsets into the flat buffers: unit 0 is the embedding, unit {@code 1 + l} block {@code l}, the last unit the
     * final norm with lm_head; {@code units + 1} offsets ending at {@code numel}. Holding only some experts, the
     * experts lie after the head ({@link #layout(ModelConfig, ExpertShard, ParameterStore.Layout)}): a block's
     * range then holds its dense tensors only, and the head's runs on over every held expert.
     */
    public long[] unitBounds() {
        return unitBounds.clone();
    }

    /**
     * Per unit of {@link #unitBounds}, the first element of its FFN half ({@link Block#ffnFrom}), or the unit's end
     * where it has none (the embedding, the head): where ZeRO-3 may cut a unit's gather in two.
     */
    public long[] ffnStarts() {
        return ffnStarts.clone();
    }

    /** The bytes of all activation buffers: what the memory planner's activation term must equal. */
    public long activationBytes() {
        return kept.bytes() + recomputed.bytes();
    }

    /** The blocks, first to last: where {@code Parallelize} installs attention's and MoE's strategies. */
    public List<Block> blocks() {
        return List.of(blocks);
    }

    /** Where parameters live between uses (ZeRO-3 gathers them); resident unless set. */
    public void useParameterSync(ParameterSync sync) {
        hook.use(sync);
    }

    /** How gradients are reduced over the replicas while backward runs; nothing to reduce unless set. */
    public void useGradientSync(GradientSync sync) {
        hook.use(sync);
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

    /** Tokens of each sequence this replica computes (all of them, unless sequence-parallel). */
    public int seq() {
        return seq;
    }

    /** The nanoseconds attention waited for the other sequence-parallel ranks since the last call. */
    public long takeAttentionWaitNanos() {
        long total = 0;
        for (Block b : blocks) {
            total += b.attention().waitedNanos();
        }
        long since = total - attentionWaitTaken;
        attentionWaitTaken = total;
        return since;
    }

    /** Which positions of each sequence this replica computes, and how its attention reaches the others. */
    public SequenceShard sequenceShard() {
        return sequence;
    }

    /**
     * Deterministic init from {@code seed} alone: each tensor draws from its own SplittableRandom seeded by
     * (seed, tensor name), so the result depends neither on threads nor on the buffer layout.
     * The seed also keys MoE random routing and draws HyperRouter hypernetworks.
     * N(0, 0.02) for embeddings, linears and routers; 1 for norm gains; N(0, 0.02/sqrt(2 L)) for the
     * projections that write into the residual stream (o_proj, down_proj / w2), as GPT-2 does.
     */
    public void initialize(long seed) {
        initialize(seed, 0, params.numel());
    }

    /**
     * As {@link #initialize(long)}, writing only elements {@code [from, to)} of the flat buffer (ZeRO-3: the rank's
     * shard), with the same bits there. A tensor's stream is drawn from its start up to the last element written,
     * so a tensor the range cuts gets the values it would get whole; tensors outside are not drawn at all.
     */
    public void initialize(long seed, long from, long to) {
        for (Block b : blocks) {
            if (b.isMoe()) {
                b.moe().useRoutingSeed(seed);
            }
        }
        double residualStd = 0.02 / Math.sqrt(2.0 * cfg.nLayers());
        for (ParameterStore.Tensor t : params.tensors()) {
            int first = (int) Math.min(t.numel(), Math.max(0, from - t.offset()));
            int end = (int) Math.min(t.numel(), Math.max(0, to - t.offset()));
            if (end <= first) {
                continue;
            }
            String name = t.name();
            Mem m = new Mem(params.param(name));
            if (name.endsWith("norm.weight") || name.endsWith("layernorm.weight")) {
                for (int i = first; i < end; i++) {
                    m.set(i, 1.0);
                }
                continue;
            }
            // HyperRouter's embedding is standard normal, as its paper's code draws it
            boolean residual = name.endsWith("o_proj.weight") || name.endsWith("down_proj.weight")
                    || name.endsWith(".w2.weight");
            double std = name.endsWith("hyper.embedding") ? 1.0 : residual ? residualStd : 0.02;
            SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L ^ name.hashCode());
            for (int i = 0; i < first; i++) {
                rng.nextGaussian(); // the values before the range, drawn and dropped: the stream is sequential
            }
            for (int i = first; i < end; i++) {
                m.set(i, std * rng.nextGaussian());
            }
        }
    }

    /**
     * Zeroes the grads, then forward and backward of loss = mean CE + auxCoef * sum of MoE aux losses + zCoef * sum
     * of MoE z-losses.
     */
    public LossParts forwardBackward(int[] inputs, int[] targets) {
        return forwardBackward(inputs, targets, 1.0);
    }

    /**
     * As {@link #forwardBackward(int[], int[])} for one replica of several: the cross-entropy gradient is scaled
     * by {@code lossScale} (local tokens / global tokens, so that summing the replicas' gradients gives the
     * gradient of the global mean), and the gradient sync hears, layer by layer from the last, which gradients
     * are final.
     */
    public LossParts forwardBackward(int[] inputs, int[] targets, double lossScale) {
        hook.zeroGradients(params);
        LossParts parts = forward(inputs, targets, true);
        int L = blocks.length;
        int head = L + 1;
        hook.backward(head, LayerHook.HELD);
        INDArray dLogits = crossEntropy.backward(lossScale); // [N, V]
        lmHead.backward(xf, dLogits, dxf, false);            // [N, V] -> [N, C]
        finalNorm.backward(xs[L], dxf, dRes, false);         // [N, C] -> dRes [N, C]
        hook.backwardDone(head);
        for (int l = L - 1; l >= 0; l--) {
            hook.backward(l + 1, l > 0 ? l : -1);            // the embedding's backward needs no parameters
            if (recompute.recomputes(l) && l != lastRecomputed) {
                blocks[l].recompute(xs[l], xs[l + 1], progress[l]); // the same bits again, into the shared buffers
            }
            blocks[l].backward(xs[l], dRes, cfg.auxCoef(), progress[l]); // dRes [N, C], in place
            hook.backwardDone(l + 1);
        }
        hook.backward(0, LayerHook.UNUSED);
        embedding.backward(inputs, dRes);                    // [N, C] -> dW [V, C]
        hook.backwardDone(0);
        return parts;
    }

    /** Forward only: mean cross-entropy, MoE layers routing at their evaluation capacity. */
    public double evaluate(int[] inputs, int[] targets) {
        setTraining(false);
        try {
            return forward(inputs, targets).crossEntropy();
        } finally {
            setTraining(true);
        }
    }

    /**
     * The training step about to run: MoE random routing draws from (seed, step, layer, token), so a recomputed or
     * resumed step routes exactly as the first run of it did.
     */
    public void beginStep(long step) {
        for (Block b : blocks) {
            if (b.isMoe()) {
                b.moe().beginStep(step);
            }
        }
    }

    /** How the last forward's MoE layers routed ({@link MoeStats#NONE} for a dense model). */
    public MoeStats moeStats() {
        int per = MoeStats.FIXED + cfg.nExperts();
        int layers = 0;
        for (Block b : blocks) {
            layers += b.isMoe() ? 1 : 0;
        }
        if (layers == 0) {
            return MoeStats.NONE;
        }
        double[] out = new double[layers * per];
        int i = 0;
        for (int l = 0; l < blocks.length; l++) {
            if (blocks[l].isMoe()) {
                out[i * per] = l;
                blocks[l].moe().writeStats(out, i * per + 1);
                i++;
            }
        }
        return new MoeStats(cfg.nExperts(), out);
    }

    private void setTraining(boolean training) {
        for (Block b : blocks) {
            if (b.isMoe()) {
                b.moe().setTraining(training);
            }
        }
    }

    /** Forward only, the loss parts (what forwardBackward differentiates is {@code total(auxCoef, zCoef)}). */
    public LossParts forward(int[] inputs, int[] targets) {
        return forward(inputs, targets, false);
    }

    /** With {@code backwardFollows}, the head's parameters stay in place and the last block's are fetched. */
    private LossParts forward(int[] inputs, int[] targets, boolean backwardFollows) {
        if (inputs.length != batch * seq) {
            throw new IllegalArgumentException("expected " + batch * seq + " inputs, got " + inputs.length);
        }
        int L = blocks.length;
        int head = L + 1;
        hook.forward(0, 1);
        embedding.forward(inputs, xs[0]);                    // [N] -> [N, C]
        hook.forwardDone(0, true);
        double aux = 0;
        double zLoss = 0;
        for (int l = 0; l < L; l++) {
            hook.forward(l + 1, l + 2);
            aux += blocks[l].forward(xs[l], xs[l + 1]);      // [N, C] -> [N, C]
            zLoss += blocks[l].isMoe() ? blocks[l].moe().lastZLoss() : 0;
            hook.forwardDone(l + 1, true);
        }
        hook.forward(head, backwardFollows ? L : -1);
        finalNorm.forward(xs[L], xf);                        // [N, C]
        lmHead.forward(xf, logits, false);                   // [N, C] -> [N, V]
        double ce = crossEntropy.forward(logits, targets);   // [N, V] -> scalar
        hook.forwardDone(head, !backwardFollows);
        return new LossParts(ce, aux, zLoss);
    }
}
