package dev.tessera.worker.parallel;

import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.Transformer;
import java.math.BigInteger;
import java.util.List;
import java.util.Optional;

/**
 * What one rank of a mesh needs in memory, estimated before anything is launched so that planning can refuse a
 * job that would not fit. Parameters and gradients are exact (the layout is counted, not guessed); activations
 * follow what the layers allocate per token, rounded up; the runtime term is the JVM plus ND4J's natives
 * (STACK.md: about 350 MB resident after start). Sizes come from user config values, so they are computed in
 * BigInteger: a product of config values must never wrap around into a small, plausible number.
 */
public record MemoryEstimate(BigInteger paramBytes, BigInteger gradBytes, BigInteger optimizerStateBytes,
                             BigInteger activationBytes, BigInteger runtimeBytes) {

    static final long RUNTIME_BYTES = 512L << 20;

    /** One buffer the rank would allocate that is larger than it may be ({@code limit} bytes). */
    public record Oversized(String buffer, BigInteger bytes, BigInteger limit, List<String> fields) {
    }

    public BigInteger total() {
        return paramBytes.add(gradBytes).add(optimizerStateBytes).add(activationBytes).add(runtimeBytes);
    }

    /**
     * @param stateValuesPerParam optimizer state values per parameter held by this rank (AdamW 2; the factored
     *                            optimizers report much less)
     * @param zeroStage           ZeRO shards the optimizer state (1), also the gradients (2) and also the
     *                            parameters (3) over the data-parallel ranks (§3 of ALGORITHMS.md; stage 3 keeps
     *                            the gathered block in use besides, which the estimate leaves out)
     */
    public static MemoryEstimate of(ModelConfig cfg, int dtypeBytes, Mesh mesh, int globalBatch, int seq,
                                    double stateValuesPerParam, int zeroStage) {
        BigInteger dense = BigInteger.ZERO;
        BigInteger expert = BigInteger.ZERO;
        for (Shape t : parameterShapes(cfg)) {
            if (t.name().contains(".experts.")) {
                expert = expert.add(t.numel());
            } else {
                dense = dense.add(t.numel());
            }
        }
        BigInteger bytesPer = big(dtypeBytes);
        BigInteger perRank = dense.add(expert.divide(big(mesh.ep())));
        BigInteger bytes = perRank.multiply(bytesPer);
        long tokens = (long) (globalBatch / mesh.dp()) * (seq / mesh.sp());
        // Each class is sharded over the ranks that replicate it: dense over all W, experts over W / ep.
        BigInteger shardedValues = dense.divide(big(mesh.world()))
                .add(expert.divide(big(mesh.ep())).divide(big(Math.max(1, mesh.world() / mesh.ep()))));
        BigInteger sharded = shardedValues.multiply(bytesPer);
        BigInteger stateValues = new java.math.BigDecimal(zeroStage >= 1 ? shardedValues : perRank)
                .multiply(java.math.BigDecimal.valueOf(stateValuesPerParam))
                .setScale(0, java.math.RoundingMode.CEILING).toBigIntegerExact();
        return new MemoryEstimate(zeroStage >= 3 ? sharded : bytes, zeroStage >= 2 ? sharded : bytes,
                stateValues.multiply(bytesPer),
                activationValues(cfg, tokens, globalBatch / mesh.dp(), seq / mesh.sp(), seq).multiply(bytesPer),
                big(RUNTIME_BYTES));
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
        for (Shape t : parameterShapes(cfg)) {
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
    private static List<Shape> parameterShapes(ModelConfig cfg) {
        List<Shape> shapes = new java.util.ArrayList<>();
        ParameterStore.Layout b = new ParameterStore.Layout() {
            @Override
            public ParameterStore.Layout add(String name, long... shape) {
                shapes.add(new Shape(name, shape.clone()));
                return this;
            }
        };
        Transformer.layout(cfg, b);
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
        if (tensor.contains(".experts.")) {
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

    /**
     * Per token and block: the block input, two norm outputs, q, k, v, the attention output and its projection
     * (8 C), the FFN's gate, up and activated hidden (3 F; for MoE every local expert's buffers count, as they
     * are sized for all tokens) and its output (C). The attention scores [B, H, T/sp, T] are shared by the blocks.
     * Logits and their gradient are 2 V per token.
     */
    private static BigInteger activationValues(ModelConfig cfg, long tokens, long sequences, int segment, int seq) {
        BigInteger perTokenPerBlock = BigInteger.ZERO;
        for (int l = 0; l < cfg.nLayers(); l++) {
            BigInteger ffn = cfg.isMoeBlock(l)
                    ? big(cfg.nExperts()).multiply(big(cfg.expertDFF())).add(big(cfg.nExperts()))
                    : big(cfg.dFF());
            perTokenPerBlock = perTokenPerBlock.add(big(9L * cfg.dModel())).add(ffn.multiply(big(3)));
        }
        BigInteger scores = big(sequences).multiply(big(cfg.nHeads())).multiply(big(segment)).multiply(big(seq));
        return big(tokens).multiply(perTokenPerBlock.add(big(2L * cfg.vocabSize())).add(big(4L * cfg.dModel())))
                .add(scores);
    }

    private static BigInteger big(long v) {
        return BigInteger.valueOf(v);
    }
}
