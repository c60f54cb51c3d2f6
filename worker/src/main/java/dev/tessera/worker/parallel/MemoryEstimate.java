package dev.tessera.worker.parallel;

import dev.tessera.comm.CommConfig;
import dev.tessera.comm.SymmetricMemory;
import dev.tessera.optimizers.OptimizerSpec;
import dev.tessera.optimizers.ParamSpan;
import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.ShardPlan;
import dev.tessera.worker.model.AttentionCore;
import dev.tessera.worker.model.BlockwiseAttention;
import dev.tessera.worker.model.ExpertShard;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.RecomputePolicy;
import dev.tessera.worker.model.Transformer;
import java.math.BigInteger;
import java.util.List;
import java.util.Optional;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * What one rank of a mesh needs in memory at its peak, estimated before anything is launched so that planning
 * can refuse a job that would not fit and say what would. Each term is counted from the layout, not guessed:
 * <ul>
 *   <li>parameters and gradients: the flat buffers, or under ZeRO the fullest rank's shard ({@link ShardPlan},
 *       as the workers cut it) plus what is resident only while it is used: stage 3's gathered units (the one in
 *       use, the prefetched next one and the head, which stays from forward into backward), stage 2's gradient
 *       buckets waiting for their reduce-scatter;</li>
 *   <li>optimizer state: what the optimizer keeps for that shard ({@link OptimizerSpec#stateElements});</li>
 *   <li>activations: every buffer the layers take from their {@link dev.tessera.worker.model.Activations}, the
 *       blocks that recompute in backward sharing one set ({@link #activationBytes}, equal to what
 *       {@link Transformer#activationBytes} counts);</li>
 *   <li>communication: the peers' pages of symmetric memory that the collectives read, and Aeron's logs
 *       ({@link #commBytes});</li>
 *   <li>runtime: the JVM, ND4J's and OpenBLAS's natives and Hazelcast, measured on workers of tiny models
 *       (docs/PERFORMANCE.md).</li>
 * </ul>
 * Sizes come from user config values, so they are computed in BigInteger: a product of config values must never
 * wrap around into a small, plausible number.
 */
public record MemoryEstimate(BigInteger paramBytes, BigInteger gradBytes, BigInteger optimizerStateBytes,
                             BigInteger activationBytes, BigInteger commBytes, BigInteger runtimeBytes) {

    /**
     * A worker of a tiny model: JVM, heap, ND4J's and OpenBLAS's natives, Hazelcast (docs/PERFORMANCE.md). It was
     * 290 MB while a worker's young generation could grow past 100 MB; fixed at 32 MB, MemoryPlanTest's workers
     * measured 47-85 MB less (225 MB), and the young generation is now 16 MB.
     */
    static final long RUNTIME_BYTES = 209L << 20;

    /** One buffer the rank would allocate that is larger than it may be ({@code limit} bytes). */
    public record Oversized(String buffer, BigInteger bytes, BigInteger limit, List<String> fields) {
    }

    /**
     * What the estimate depends on.
     *
     * @param kernelThreads each worker's kernel threads (its share of the cores): attention keeps scratch per
     *                      thread
     * @param overlapExperts {@code moe.overlap}: the expert exchange's results go back through memory of their own
     */
    public record Job(ModelConfig model, DataType dtype, Mesh mesh, int globalBatch, int seq, OptimizerSpec optimizer,
                      int zeroStage, RecomputePolicy recompute, int kernelThreads, SequenceScheme sequence,
                      boolean overlapExperts) {

        /** The expert exchange in one piece. */
        public Job(ModelConfig model, DataType dtype, Mesh mesh, int globalBatch, int seq, OptimizerSpec optimizer,
                   int zeroStage, RecomputePolicy recompute, int kernelThreads, SequenceScheme sequence) {
            this(model, dtype, mesh, globalBatch, seq, optimizer, zeroStage, recompute, kernelThreads, sequence, false);
        }

        /** Without a sequence-parallel scheme (it matters only when {@code mesh.sp() > 1}). */
        public Job(ModelConfig model, DataType dtype, Mesh mesh, int globalBatch, int seq, OptimizerSpec optimizer,
                   int zeroStage, RecomputePolicy recompute, int kernelThreads) {
            this(model, dtype, mesh, globalBatch, seq, optimizer, zeroStage, recompute, kernelThreads,
                    SequenceScheme.ALLGATHER);
        }

        public Job withZeroStage(int stage) {
            return new Job(model, dtype, mesh, globalBatch, seq, optimizer, stage, recompute, kernelThreads, sequence,
                    overlapExperts);
        }

        public Job withRecompute(RecomputePolicy policy) {
            return new Job(model, dtype, mesh, globalBatch, seq, optimizer, zeroStage, policy, kernelThreads, sequence,
                    overlapExperts);
        }

        public Job withMesh(Mesh m, int threads) {
            return new Job(model, dtype, m, globalBatch, seq, optimizer, zeroStage, recompute, threads, sequence,
                    overlapExperts);
        }
    }

    public BigInteger total() {
        return paramBytes.add(gradBytes).add(optimizerStateBytes).add(activationBytes).add(commBytes)
                .add(runtimeBytes);
    }

    public static MemoryEstimate of(Job job) {
        ModelConfig cfg = job.model();
        Mesh mesh = job.mesh();
        BigInteger width = big(job.dtype().width());
        // One rank's tensors: the dense ones and its share of the experts (expert parallelism lays them apart).
        List<Shape> shapes = parameterShapes(cfg, new ExpertShard(0, cfg.nExperts() / mesh.ep()));
        List<Shape> dense = shapes.stream().filter(t -> !ExpertShard.isExpertTensor(t.name())).toList();
        List<Shape> experts = shapes.stream().filter(t -> ExpertShard.isExpertTensor(t.name())).toList();
        BigInteger replica = sum(shapes);
        boolean zero = job.zeroStage() >= 1;
        ShardSizes shard;
        if (mesh.ep() == 1) {
            shard = ShardSizes.of(shapes, zero ? mesh.world() : 1, job.optimizer());
        } else {
            // ZeRO shards the dense region over every rank and the experts over the ranks that hold the same ones.
            shard = ShardSizes.of(dense, zero ? mesh.world() : 1, job.optimizer())
                    .plus(ShardSizes.of(experts, zero ? mesh.world() / mesh.ep() : 1, job.optimizer()));
        }
        BigInteger params = job.zeroStage() >= 3 ? replica.min(shard.params().add(gatheredUnits(cfg, shapes))) : replica;
        BigInteger grads = job.zeroStage() >= 2 ? replica.min(shard.params().add(bucketsInFlight(shapes))) : replica;
        return new MemoryEstimate(params.multiply(width), grads.multiply(width), shard.state().multiply(width),
                activationBytes(job), commBytes(job, replica.multiply(width)).add(sequenceExchangeBytes(job)),
                big(RUNTIME_BYTES).add(hyperRouterBytes(cfg, width)));
    }

    private static BigInteger sum(List<Shape> shapes) {
        return shapes.stream().map(Shape::numel).reduce(BigInteger.ZERO, BigInteger::add);
    }

    /**
     * What HyperRouters hold outside the parameters, per MoE layer: the fixed hypernetwork and its scratch in
     * doubles, and the generated router and its gradient in the model's dtype (HyperRouter's fields).
     */
    static BigInteger hyperRouterBytes(ModelConfig cfg, BigInteger width) {
        if (!cfg.routing().hyper()) {
            return BigInteger.ZERO;
        }
        long hidden = cfg.routing().hyperSize();
        long c = cfg.dModel();
        long e = cfg.nExperts();
        long out = e * (c + 1);
        BigInteger doubles = big(hidden * c + hidden + out * hidden + out + hidden + 2 * out + hidden + 2 * e);
        BigInteger perLayer = doubles.multiply(big(8)).add(big(2 * e * c).multiply(width));
        long layers = 0;
        for (int l = 0; l < cfg.nLayers(); l++) {
            layers += cfg.isMoeBlock(l) ? 1 : 0;
        }
        return perLayer.multiply(big(layers));
    }

    /**
     * What the data-parallel collectives make resident besides the rank's own buffers. Plain data parallelism keeps
     * its gradient buffer in {@link SymmetricMemory} ({@code Parallelize.gradientMemory}) and all-reduces it in
     * place: it reads each peer's share of the peers' buffers twice over (reduce-scatter, then all-gather), and
     * those pages count in this process's resident set. The ZeRO stages keep their buffers private, and what goes
     * over Aeron (ZeRO's collectives, or stage 0's when the buffer is too large for one mapping) runs around the
     * ring: through the publication to the next rank and the image of the previous one's, each a log of three
     * terms that a busy stream cycles through whole (measured alike on 2 and 4 workers).
     */
    private static BigInteger commBytes(Job job, BigInteger flatBytes) {
        int ranks = job.mesh().world(); // expert parallelism too: its dense region is reduced over every rank
        if (ranks <= 1) {
            return BigInteger.ZERO;
        }
        boolean symmetric = flatBytes.compareTo(big(SymmetricMemory.MAX_BYTES)) <= 0;
        BigInteger peers = big(ranks - 1L);
        BigInteger bytes = BigInteger.ZERO;
        if (symmetric && job.zeroStage() == 0) {
            bytes = flatBytes.multiply(peers).divide(big(ranks)).shiftLeft(1);
        }
        if (!symmetric || job.zeroStage() >= 1) {
            bytes = bytes.add(big(2L * 3 * CommConfig.DEFAULT_TERM_LENGTH));
        }
        return bytes;
    }

    /** The elements a rank owns and the optimizer state it keeps for them. */
    private record ShardSizes(BigInteger params, BigInteger state) {

        /** The rank with the most state when {@code ranks} shard {@code shapes}, as {@link ShardPlan#bounds} cuts. */
        static ShardSizes of(List<Shape> shapes, int ranks, OptimizerSpec optimizer) {
            BigInteger total = sum(shapes);
            if (total.bitLength() > 62) {
                BigInteger share = total.divide(big(ranks)).add(BigInteger.ONE);
                return new ShardSizes(share, share.multiply(big(2)));
            }
            List<ParamSpan> spans = spans(shapes);
            long[] bounds = ShardPlan.bounds(spans, total.longValueExact(), ranks,
                    owned -> optimizer.stateElements(spans, owned));
            long params = 0;
            long state = 0;
            for (int r = 0; r < ranks; r++) {
                Shard s = new Shard(bounds[r], bounds[r + 1]);
                params = Math.max(params, s.length());
                state = Math.max(state, optimizer.stateElements(spans, s));
            }
            return new ShardSizes(big(params), big(state));
        }

        /** Both regions' fullest ranks together: at most what one rank holds of the two. */
        ShardSizes plus(ShardSizes other) {
            return new ShardSizes(params.add(other.params), state.add(other.state));
        }

        private static List<ParamSpan> spans(List<Shape> shapes) {
            List<ParamSpan> spans = new java.util.ArrayList<>();
            long offset = 0;
            for (Shape t : shapes) {
                long numel = t.numel().longValueExact();
                spans.add(new ParamSpan(t.name(), offset, numel, t.shape()));
                offset += numel;
            }
            return spans;
        }
    }

    /**
     * Stage 3 keeps a unit's parameters only while it runs, with the next one's gather already under way in
     * forward, and the head's from the end of forward to the start of backward: at most the two largest units and
     * the head. (Backward holds less, a block's attention half and the next block, but forward's two units bound
     * the parameters.)
     */
    private static BigInteger gatheredUnits(ModelConfig cfg, List<Shape> shapes) {
        BigInteger head = BigInteger.ZERO;
        List<BigInteger> units = new java.util.ArrayList<>();
        BigInteger[] blocks = new BigInteger[cfg.nLayers()];
        java.util.Arrays.fill(blocks, BigInteger.ZERO);
        for (Shape t : shapes) {
            if (t.name().startsWith("model.layers.")) {
                int l = Integer.parseInt(t.name().split("\\.")[2]);
                blocks[l] = blocks[l].add(t.numel());
            } else if (t.name().startsWith("model.embed_tokens")) {
                units.add(t.numel());
            } else {
                head = head.add(t.numel());
            }
        }
        units.addAll(List.of(blocks));
        units.sort(java.util.Comparator.reverseOrder());
        BigInteger two = units.stream().limit(2).reduce(BigInteger.ZERO, BigInteger::add);
        return two.add(head);
    }

    /**
     * Stage 2 and 3: a gradient bucket stays whole until its reduce-scatter is done; backward runs ahead of at
     * most {@link ZeroSharding#MAX_BUCKETS_IN_FLIGHT} of them and fills the next, each holding at least
     * {@link ParallelSpec#BUCKET_ELEMENTS} or one tensor.
     */
    private static BigInteger bucketsInFlight(List<Shape> shapes) {
        BigInteger largest = big(ParallelSpec.BUCKET_ELEMENTS);
        for (Shape t : shapes) {
            largest = largest.max(t.numel().add(big(ParallelSpec.BUCKET_ELEMENTS)));
        }
        return largest.multiply(big(ZeroSharding.MAX_BUCKETS_IN_FLIGHT + 1L));
    }

    /**
     * Every activation buffer of one rank, as the layers take them: each block's own, or for the blocks that
     * recompute in backward one shared set (per buffer shape, as many as the block that takes the most), plus
     * the model's: the block inputs, the head's and the loss's.
     */
    public static BigInteger activationBytes(Job job) {
        ModelConfig cfg = job.model();
        long batch = job.globalBatch() / job.mesh().dp();
        long seq = job.seq() / job.mesh().sp();
        long n = batch * seq;
        BigInteger width = big(job.dtype().width());
        Buffers kept = new Buffers(width);
        java.util.Map<String, long[]> shared = new java.util.HashMap<>(); // key -> {most per block, bytes}
        for (int l = 0; l < cfg.nLayers(); l++) {
            Buffers block = new Buffers(width);
            blockBuffers(job, l, batch, seq, block);
            if (job.recompute().recomputes(l)) {
                block.counts.forEach((key, count) -> shared.merge(key, new long[] {count, block.sizes.get(key)},
                        (a, b) -> a[0] >= b[0] ? a : b));
            } else {
                kept.addAll(block);
            }
        }
        if (job.dtype() != DataType.FLOAT && job.mesh().sp() == 1) {
            kept.array(batch * cfg.nHeads(), seq, seq);      // the score scratch the blocks share
        }
        kept.doubles(n);                                     // final norm
        kept.array(n, cfg.vocabSize());                      // loss: probabilities, then their gradient
        kept.doubles(n);
        for (int l = 0; l <= cfg.nLayers(); l++) {
            kept.array(n, cfg.dModel());                     // block inputs and the last output
        }
        kept.array(n, cfg.dModel());                         // xf, dxf, dRes
        kept.array(n, cfg.vocabSize());                      // logits
        kept.array(n, cfg.dModel());
        kept.array(n, cfg.dModel());
        BigInteger bytes = kept.bytes;
        for (long[] e : shared.values()) {
            bytes = bytes.add(big(e[0]).multiply(big(e[1])));
        }
        return bytes;
    }

    /** Block {@code l}'s buffers, in the order and shapes its layers take them. */
    private static void blockBuffers(Job job, int l, long batch, long seq, Buffers b) {
        ModelConfig cfg = job.model();
        long n = batch * seq;
        long c = cfg.dModel();
        int heads = cfg.nHeads();
        long headDim = c / heads;
        b.doubles(n);                                        // input norm
        long bh = batch * heads;
        int sp = job.mesh().sp();
        long whole = job.seq();
        if (sp == 1) {
            attentionCore(job, b, bh, seq, seq, AttentionCore.blockHeads(heads, (int) batch, (int) seq, (int) headDim,
                    job.kernelThreads()));
        } else if (job.sequence() == SequenceScheme.RING) {
            b.array(bh, seq, headDim);                       // the merged output and its log-sum-exp, for backward
            b.array(bh, seq);
        } else if (job.sequence() == SequenceScheme.ULYSSES) {
            long rows = bh / sp;                             // this rank's heads of every token
            for (int i = 0; i < 3; i++) {
                b.array(rows, whole, headDim);               // their q, k, v, kept for backward
            }
            attentionCore(job, b, rows, whole, whole, AttentionCore.blockHeads(heads / sp, (int) batch, (int) whole,
                    (int) headDim, job.kernelThreads()));
        } else {
            b.array(bh, whole, headDim);                     // the gathered K and V, kept for backward
            b.array(bh, whole, headDim);
            attentionCore(job, b, bh, seq, whole, 1);
        }
        b.array(n, 3 * c);                                   // qkv, dqkv, y, tmp
        b.array(n, 3 * c);
        b.array(n, c);
        b.array(n, c);
        if (job.dtype() != DataType.FLOAT || sp > 1) {
            for (int i = 0; i < 7; i++) {
                b.array(bh, seq, headDim);                   // head-major copies
            }
        }
        b.doubles(n);                                        // post-attention norm
        if (cfg.isMoeBlock(l)) {
            long e = cfg.nExperts();
            long rows = n * cfg.topK();
            b.array(n, e);
            b.array(n, e);
            b.doubles(n * e);
            b.ints(rows);
            b.doubles(n);                                    // logsumexp per token, for the z-loss
            b.doubles(rows);
            b.doubles(rows);
            b.ints(rows);
            b.ints(rows);
            b.ints(rows);
            for (int i = 0; i < 4; i++) {
                b.array(rows, c);
            }
            int ep = job.mesh().ep();
            // Expert parallelism: the experts run on the rows that arrive, in buffers of their own, beside the
            // arrived rows and the staging memory. Each may come to hold the largest exchange, every token's
            // choices arriving at one rank (MoE.maxExchangeRows, dropless): a fresh router sends most rows to a
            // few experts, and the buffers grow to what arrived and stay.
            long expertRows = ep == 1 ? rows : ep * rows;
            if (ep > 1) {
                for (int i = 0; i < 4; i++) {
                    b.array(expertRows, c);
                }
                b.array(ep * rows, c);
                b.array(ep * rows, c);
                if (job.overlapExperts()) {
                    b.array(ep * rows, c);                   // the results' symmetric memory
                }
            }
            b.array(expertRows, 2L * cfg.expertDFF());
            b.array(expertRows, cfg.expertDFF());
        } else {
            b.array(n, 2L * cfg.dFF());
            b.array(n, cfg.dFF());
        }
        for (int i = 0; i < 4; i++) {
            b.array(n, c);                                   // n1, h, n2, dn
        }
    }

    /**
     * What an {@link AttentionCore} of {@code rows} (batch, head) rows, {@code tq} queries against {@code tk} keys,
     * takes from its layer's activations: the probabilities kept for backward, and in float32 each kernel thread's
     * scratch for {@code blockHeads} heads at a time.
     */
    private static void attentionCore(Job job, Buffers b, long rows, long tq, long tk, long blockHeads) {
        long d = job.model().dModel() / job.model().nHeads();
        long keys = AttentionCore.paddedKeys((int) tk);
        if (job.dtype() != DataType.FLOAT) {
            b.array(rows, tq, tk);
            return;
        }
        b.floats(rows * tq * keys);
        for (int t = 0; t < job.kernelThreads(); t++) {
            b.floats(blockHeads * tq * d);                   // q
            b.floats(blockHeads * tk * d);                   // k, v
            b.floats(blockHeads * tk * d);
            b.floats(blockHeads * tq * d);                   // dy, and y or dq
            b.floats(blockHeads * tq * d);
            b.floats(blockHeads * tk * d);                   // dk, dv
            b.floats(blockHeads * tk * d);
            b.floats(d * keys);
            b.floats(tq * keys);
        }
    }

    /**
     * What a sequence-parallel scheme holds once per rank, beside the layers' activations (the layers run one at a
     * time and share it): its exchange buffers, the whole-sequence scratch of backward, and the peers' symmetric
     * pages its collectives read, which count in this process's resident set.
     */
    static BigInteger sequenceExchangeBytes(Job job) {
        int sp = job.mesh().sp();
        if (sp == 1) {
            return BigInteger.ZERO;
        }
        ModelConfig cfg = job.model();
        long batch = job.globalBatch() / job.mesh().dp();
        long heads = cfg.nHeads();
        long d = cfg.dModel() / heads;
        long whole = job.seq();
        long local = whole / sp;
        long w = job.dtype().width();
        long bh = batch * heads;
        long bytes;
        if (job.sequence() == SequenceScheme.RING) {
            // Two travelling K|V|dK|dV blocks, the block kernel's scratch, delta; the blocks cross through the
            // publication to the right neighbour and the image of the left one's, each a log of three terms.
            bytes = 2 * 4L * bh * local * d * w + BlockwiseAttention.scratchBytes((int) w, (int) bh, (int) local,
                    (int) local, (int) d) + bh * local * w + 2L * 3 * CommConfig.DEFAULT_TERM_LENGTH;
        } else if (job.sequence() == SequenceScheme.ULYSSES) {
            long block = 3L * bh * local * d * w;            // q|k|v of every head of the rank's tokens
            bytes = 2 * block + 4L * (bh / sp) * whole * d * w + block / sp * (sp - 1);
            if (job.dtype() != DataType.FLOAT) {
                bytes += (bh / sp) * whole * whole * w;      // the core's score scratch
            }
        } else {
            long kv = 2L * bh * local * d * w;               // this rank's K|V
            bytes = kv + kv * sp + 2L * bh * whole * d * w + 2 * kv * (sp - 1);
            if (job.dtype() != DataType.FLOAT) {
                bytes += bh * local * whole * w;
            }
        }
        return big(bytes);
    }

    /** Buffer requests counted by shape, as {@link dev.tessera.worker.model.Activations} keys them. */
    private static final class Buffers {
        final BigInteger width;
        final java.util.Map<String, Long> counts = new java.util.HashMap<>();
        final java.util.Map<String, Long> sizes = new java.util.HashMap<>();
        BigInteger bytes = BigInteger.ZERO;

        Buffers(BigInteger width) {
            this.width = width;
        }

        void array(long... shape) {
            BigInteger numel = BigInteger.ONE;
            for (long d : shape) {
                numel = numel.multiply(big(d));
            }
            add("array" + java.util.Arrays.toString(shape), numel.multiply(width));
        }

        void doubles(long n) {
            add("double" + n, big(8 * n));
        }

        void floats(long n) {
            add("float" + n, big(4).multiply(big(n)));
        }

        void ints(long n) {
            add("int" + n, big(4 * n));
        }

        void add(String key, BigInteger size) {
            counts.merge(key, 1L, Long::sum);
            sizes.put(key, size.min(big(Long.MAX_VALUE)).longValue());
            bytes = bytes.add(size);
        }

        void addAll(Buffers other) {
            other.counts.forEach((k, v) -> counts.merge(k, v, Long::sum));
            sizes.putAll(other.sizes);
            bytes = bytes.add(other.bytes);
        }
    }

    /**
     * The first buffer of one rank that the kernels could not address, if any: a parameter tensor or one of the
     * activation buffers (each allocated whole, so each must fit on its own). The flat buffers that hold all
     * parameters, gradients and optimizer state have no such limit. {@code fields} are the config keys that make
     * it that large.
     */
    public static Optional<Oversized> firstOversized(ModelConfig cfg, int dtypeBytes, Mesh mesh, int globalBatch,
                                                     int seq) {
        BigInteger limit = big(ParameterStore.MAX_TENSOR_BYTES);
        BigInteger bytesPer = big(dtypeBytes);
        for (Shape t : parameterShapes(cfg, ExpertShard.all(cfg.nExperts()))) {
            BigInteger b = t.numel().multiply(bytesPer);
            if (b.compareTo(limit) > 0) {
                return Optional.of(new Oversized("parameter " + t.name() + " " + t.dims(), b, limit, fieldsOf(t.name())));
            }
        }
        BigInteger tokens = big(globalBatch / mesh.dp()).multiply(big(seq / mesh.sp()));
        List<String> batch = List.of("train.batch_size", "train.seq_len");
        List<Activation> acts = new java.util.ArrayList<>(List.of(
                new Activation("activation [tokens, 3 x d_model] (q, k, v)", tokens, 3L * cfg.dModel(),
                        List.of("train.batch_size", "train.seq_len", "model.d_model")),
                new Activation("activation [tokens, vocab_size] (logits)", tokens, cfg.vocabSize(), batch)));
        // Attention probabilities [batch x heads, T/sp, T]: float64 keeps them in an ND4J buffer, float32 in a
        // Java float[] whose rows are padded to whole vectors (at most 16 lanes), which an int indexes.
        BigInteger scoreRows = big(globalBatch / mesh.dp()).multiply(big(cfg.nHeads())).multiply(big(seq / mesh.sp()));
        BigInteger scoreBytes = dtypeBytes == 4
                ? scoreRows.multiply(big((seq + 15L) / 16 * 16)).multiply(big(4))
                : scoreRows.multiply(big(seq)).multiply(bytesPer);
        BigInteger scoreLimit = dtypeBytes == 4 ? big(4L * (Integer.MAX_VALUE - 8)) : limit;
        if (scoreBytes.compareTo(scoreLimit) > 0) {
            return Optional.of(new Oversized("activation [batch x n_heads, seq_len, seq_len] (attention scores)",
                    scoreBytes, scoreLimit, List.of("train.seq_len", "train.batch_size", "model.n_heads")));
        }
        if (cfg.nLayers() > 0 && hasDense(cfg)) {
            acts.add(new Activation("activation [tokens, 2 x d_ff] (gate and up)", tokens, 2L * cfg.dFF(),
                    List.of("train.batch_size", "train.seq_len", "model.d_ff")));
        }
        if (cfg.nExperts() > 0 && cfg.moeEvery() > 0) {
            BigInteger rows = tokens.multiply(big(cfg.topK()));
            acts.add(new Activation("activation [tokens x top_k, 2 x expert_d_ff] (expert gate and up)", rows,
                    2L * cfg.expertDFF(), List.of("train.batch_size", "train.seq_len", "model.top_k",
                    "model.expert_d_ff")));
            acts.add(new Activation("activation [tokens x top_k, d_model] (expert inputs)", rows, cfg.dModel(),
                    List.of("train.batch_size", "train.seq_len", "model.top_k", "model.d_model")));
        }
        for (Activation a : acts) {
            BigInteger b = a.rows().multiply(big(a.cols())).multiply(bytesPer);
            if (b.compareTo(limit) > 0) {
                return Optional.of(new Oversized(a.what(), b, limit, a.fields()));
            }
        }
        return Optional.empty();
    }

    private record Activation(String what, BigInteger rows, long cols, List<String> fields) {
    }

    /** A parameter tensor's name and exact shape, computed from the config without the layout's long sums. */
    private record Shape(String name, long[] shape) {
        BigInteger numel() {
            BigInteger n = BigInteger.ONE;
            for (long d : shape) {
                n = n.multiply(big(d));
            }
            return n;
        }

        String dims() {
            return java.util.Arrays.toString(shape);
        }
    }

    /** Every parameter tensor of the layout in buffer order, without the builder's offsets (which are longs). */
    private static List<Shape> parameterShapes(ModelConfig cfg, ExpertShard held) {
        List<Shape> shapes = new java.util.ArrayList<>();
        ParameterStore.Layout b = new ParameterStore.Layout() {
            @Override
            public ParameterStore.Layout add(String name, long... shape) {
                shapes.add(new Shape(name, shape.clone()));
                return this;
            }
        };
        Transformer.layout(cfg, held, b);
        return shapes;
    }

    private static boolean hasDense(ModelConfig cfg) {
        for (int l = 0; l < cfg.nLayers(); l++) {
            if (!cfg.isMoeBlock(l)) {
                return true;
            }
        }
        return false;
    }

    /** The config keys behind a parameter tensor's dimensions, by the layout's (Hugging Face) naming. */
    private static List<String> fieldsOf(String tensor) {
        if (ExpertShard.isExpertTensor(tensor)) {
            return List.of("model.expert_d_ff", "model.d_model");
        }
        if (tensor.contains(".mlp.")) {
            return List.of("model.d_ff", "model.d_model");
        }
        if (tensor.endsWith(".gate.weight")) {
            return List.of("model.n_experts", "model.d_model");
        }
        return List.of("model.d_model");
    }

    private static BigInteger big(long v) {
        return BigInteger.valueOf(v);
    }
}
