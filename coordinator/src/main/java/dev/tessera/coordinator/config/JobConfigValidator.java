package dev.tessera.coordinator.config;

import dev.tessera.comm.compress.CompressionMethod;
import dev.tessera.comm.compress.CompressionSpec;
import dev.tessera.worker.cluster.ClusterSettings;
import dev.tessera.worker.job.AdafactorSection;
import dev.tessera.worker.job.CameSection;
import dev.tessera.worker.job.Co2Section;
import dev.tessera.worker.job.DataSection;
import dev.tessera.worker.job.DataSourceKind;
import dev.tessera.worker.job.Dtype;
import dev.tessera.worker.job.FaultSection;
import dev.tessera.worker.job.GateKind;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.job.LaunchSection;
import dev.tessera.worker.job.MeshSection;
import dev.tessera.worker.job.ModelSection;
import dev.tessera.worker.job.MoeSection;
import dev.tessera.worker.job.OptimizerSection;
import dev.tessera.worker.job.SyntheticDataSection;
import dev.tessera.worker.job.TrainSection;
import dev.tessera.worker.model.ModelConfig;
import dev.tessera.worker.parallel.MemoryEstimate;
import dev.tessera.worker.parallel.SequenceScheme;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.math.BigInteger;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * Rejects configs that could not train, before anything starts: each failure names the key, the value and
 * what would fix it, prefixed with where the value was set.
 */
final class JobConfigValidator {

    /** The byte tokenizer maps every byte to its own token. */
    static final int BYTE_VOCAB = 256;

    private final Function<String, String> originOf;

    private JobConfigValidator(Function<String, String> originOf) {
        this.originOf = originOf;
    }

    static void validate(JobConfig config, Function<String, String> originOf) {
        JobConfigValidator v = new JobConfigValidator(originOf);
        v.model(config.model());
        v.data(config.data(), config.model());
        v.train(config.train());
        v.optimizer(config.optimizer(), config.train());
        v.atLeast("eval.every", config.eval().every(), 0);
        v.atLeast("eval.batches", config.eval().batches(), 1);
        v.atLeast("checkpoint.every", config.checkpoint().every(), 0);
        v.atLeast("checkpoint.keep_last", config.checkpoint().keepLast(), 1);
        v.atLeast("checkpoint.keep_every", config.checkpoint().keepEvery(), 0);
        v.mesh(config.mesh(), config.model(), config.train());
        v.launch(config.launch(), config.mesh());
        v.atLeast("restart.max_restarts", config.restart().maxRestarts(), 0);
        v.atLeast("zero.stage", config.zero().stage(), 0);
        v.atMost("zero.stage", config.zero().stage(), 3);
        v.moe(config.moe(), config.mesh());
        v.compression(config);
        v.co2(config);
        v.fault(config.fault());
        v.memory(config);
        if (config.out() != null && config.out().isBlank()) {
            v.fail("out", "out must be a directory path or null (got an empty string)");
        }
    }

    /** Every key is checked, not only the chosen method's; then what compression composes with. */
    private void compression(JobConfig config) {
        CompressionSpec c = config.compression();
        inUnit("compression.topk_density", c.topkDensity());
        atLeast("compression.qsgd_bits", c.qsgdBits(), 2);
        atMost("compression.qsgd_bits", c.qsgdBits(), 8);
        atLeast("compression.qsgd_bucket", c.qsgdBucket(), 1);
        atLeast("compression.powersgd_rank", c.powersgdRank(), 1);
        inUnit("compression.fedzip_keep", c.fedzipKeep());
        atLeast("compression.lgreco_warmup_steps", c.lgrecoWarmupSteps(), 0);
        atLeast("compression.lgreco_period", c.lgrecoPeriod(), 1);
        atLeast("compression.lgreco_resolution", c.lgrecoResolution(), 1);
        if (!(c.lgrecoSlack() > -1) || Double.isInfinite(c.lgrecoSlack())) {
            fail("compression.lgreco_slack", "compression.lgreco_slack must be > -1 (the budget is 1 + slack times the"
                    + " uniform setting's error; got " + c.lgrecoSlack() + ")");
        }
        atLeast("compression.min_elements", c.minElements(), 0);
        if (!c.enabled()) {
            return;
        }
        String method = "compression.method: " + c.method().name().toLowerCase(Locale.ROOT);
        if (c.lgreco() && c.method() == CompressionMethod.FEDZIP) {
            failAt(List.of("compression.lgreco", "compression.method"), "compression.lgreco chooses among topk, qsgd"
                    + " or powersgd settings, not fedzip's; set compression.lgreco: false or another method");
        }
        if (config.zero().stage() > 2) {
            failAt(List.of("zero.stage", "compression.method"), method + " works with zero.stage 0, 1 or 2 (stage 3"
                    + " gathers parameters per layer and reduce-scatters whole buckets); set zero.stage <= 2");
        }
        if (config.mesh().sp() > 1 || config.mesh().ep() > 1) {
            failAt(List.of("compression.method", "mesh.sp", "mesh.ep"), method + " compresses data-parallel"
                    + " gradients only; set mesh.sp: 1 and mesh.ep: 1, or compression.method: none");
        }
        if (config.model().dtype() != Dtype.FLOAT32) {
            failAt(List.of("compression.method", "model.dtype"), method + " encodes float32 gradients; set"
                    + " model.dtype: float32");
        }
    }

    /**
     * Every {@code co2} key is checked, on or off; then what CO2 composes with so far: plain data parallelism
     * (ZeRO-0, no sequence or expert parallelism; compression only with the whole outer state) and float32.
     */
    private void co2(JobConfig config) {
        Co2Section c = config.co2();
        atLeast("co2.tau", c.tau(), 1);
        positive("co2.outer_lr", c.outerLr());
        unitInterval("co2.outer_momentum", c.outerMomentum());
        positive("co2.gap_penalty", c.gapPenalty());
        positive("co2.clip_threshold", c.clipThreshold());
        if (!c.enabled()) {
            return;
        }
        if (config.zero().stage() > 0) {
            failAt(List.of("zero.stage", "co2.enabled"), "co2 with zero.stage " + config.zero().stage()
                    + " is not built yet (issue 19); set zero.stage: 0");
        }
        if (config.mesh().sp() > 1 || config.mesh().ep() > 1) {
            failAt(List.of("mesh.sp", "mesh.ep", "co2.enabled"), "co2 with mesh.sp or mesh.ep > 1 is not built yet"
                    + " (issue 19); set mesh.sp: 1 and mesh.ep: 1");
        }
        if (config.compression().enabled() && c.shardOuterState()) {
            // The sharded average is a reduce-scatter of parameters; the codecs reduce whole buffers of deltas.
            failAt(List.of("compression.method", "co2.shard_outer_state"), "co2.shard_outer_state with compression"
                    + " is not built yet (issue 19); set co2.shard_outer_state: false or compression.method: none");
        }
        if (config.model().dtype() != Dtype.FLOAT32) {
            failAt(List.of("model.dtype", "co2.enabled"), "co2 averages float32 parameters; set model.dtype: float32");
        }
        if (c.shardOuterState() && c.keepLocalProgress()) {
            // A kept progress is measured from the whole x_t, which no sharded rank holds (it owns 1/N of it).
            failAt(List.of("co2.shard_outer_state", "co2.keep_local_progress"), "co2.shard_outer_state with"
                    + " co2.keep_local_progress is not built yet (issue 19); set one of them to false");
        }
    }

    private void inUnit(String path, double value) {
        if (!(value > 0 && value <= 1)) {
            fail(path, path + " must be in (0, 1] (got " + value + ")");
        }
    }

    private void moe(MoeSection moe, MeshSection mesh) {
        atLeast("moe.ranks_per_node", moe.ranksPerNode(), 0);
        if (moe.ranksPerNode() > 0 && mesh.ep() % moe.ranksPerNode() != 0) {
            fail("moe.ranks_per_node", "moe.ranks_per_node=" + moe.ranksPerNode() + " must divide mesh.ep="
                    + mesh.ep() + " (a node is that many ranks of an expert group); or 0 for the ranks per host");
        }
    }

    private void model(ModelSection m) {
        if (m.vocabSize() != BYTE_VOCAB) {
            fail("model.vocab_size", "model.vocab_size must be " + BYTE_VOCAB + " for the byte tokenizer (got "
                    + m.vocabSize() + ")");
        }
        atLeast("model.d_model", m.dModel(), 1);
        atLeast("model.n_layers", m.nLayers(), 1);
        atLeast("model.n_heads", m.nHeads(), 1);
        atLeast("model.d_ff", m.dFF(), 1);
        if (m.dModel() % m.nHeads() != 0) {
            failAt(List.of("model.n_heads", "model.d_model"),
                    "model.d_model (" + m.dModel() + ") must be divisible by model.n_heads ("
                    + m.nHeads() + "); change one of them");
        }
        if ((m.dModel() / m.nHeads()) % 2 != 0) {
            failAt(List.of("model.n_heads", "model.d_model"),
                    "model.d_model / model.n_heads = " + m.dModel() / m.nHeads()
                    + " must be even, because RoPE rotates pairs of dimensions");
        }
        positive("model.rope_theta", m.ropeTheta());
        positive("model.norm_eps", m.normEps());
        atLeast("model.n_experts", m.nExperts(), 0);
        atLeast("model.moe_every", m.moeEvery(), 0);
        if (m.moeEvery() > 0) {
            moe(m);
        }
    }

    private void moe(ModelSection m) {
        String dense = "; or set model.moe_every: 0 for a dense model";
        if (m.nExperts() < 2) {
            failAt(List.of("model.n_experts", "model.moe_every"),
                    "model.n_experts must be >= 2 when model.moe_every > 0 (got " + m.nExperts()
                    + ")" + dense);
        }
        if (m.moeEvery() > m.nLayers()) {
            failAt(List.of("model.moe_every", "model.n_layers"),
                    "model.moe_every (" + m.moeEvery() + ") exceeds model.n_layers ("
                    + m.nLayers() + "), so no block would be MoE" + dense);
        }
        atLeast("model.top_k", m.topK(), 1);
        if (m.topK() > m.nExperts()) {
            failAt(List.of("model.top_k", "model.n_experts"),
                    "model.top_k (" + m.topK() + ") must be <= model.n_experts (" + m.nExperts()
                    + ")");
        }
        atLeast("model.expert_d_ff", m.expertDFF(), 1);
        nonNegative("model.aux_coef", m.auxCoef());
        nonNegative("model.router_z_coef", m.routerZCoef());
        positive("model.capacity_factor", m.capacityFactor());
        positive("model.eval_capacity_factor", m.evalCapacityFactor());
        int gateChoices = switch (m.gate()) {
            case TOPK -> m.topK();
            case SWITCH -> 1;
            case GSHARD -> 2;
            case HYPER -> m.topK();
        };
        if (m.gate() == GateKind.HYPER && m.hyperSize() <= 0) {
            failAt(List.of("model.hyper_size", "model.gate"), "model.gate: hyper needs model.hyper_size, the hidden"
                    + " width of its hypernetwork (> 0; its paper uses 256), got " + m.hyperSize());
        }
        if (m.topK() != gateChoices) {
            failAt(List.of("model.top_k", "model.gate"), "model.top_k must be " + gateChoices + " for model.gate: "
                    + m.gate().name().toLowerCase(java.util.Locale.ROOT) + " (got " + m.topK() + ")");
        }
    }

    private void data(DataSection d, ModelSection m) {
        if (!(d.valFraction() > 0 && d.valFraction() < 1)) {
            fail("data.val_fraction", "data.val_fraction must be strictly between 0 and 1 (got "
                    + d.valFraction() + ")");
        }
        if (d.source() == DataSourceKind.TEXT) {
            textFile(d.path());
        } else {
            SyntheticDataSection s = d.synthetic();
            atLeast("data.synthetic.domains", s.domains(), 1);
            atLeast("data.synthetic.symbols_per_domain", s.symbolsPerDomain(), 1);
            atLeast("data.synthetic.branching", s.branching(), 1);
            long symbols = (long) s.domains() * s.symbolsPerDomain();
            if (symbols > m.vocabSize()) {
                failAt(List.of("data.synthetic.symbols_per_domain", "data.synthetic.domains"),
                        "data.synthetic.domains x symbols_per_domain = " + symbols
                        + " exceeds model.vocab_size (" + m.vocabSize() + "); use fewer domains or symbols");
            }
        }
    }

    private void textFile(String path) {
        if (path == null || path.isBlank()) {
            failAt(List.of("data.source", "data.path"),
                    "data.source is text but data.path is not set; set data.path to a text file or a folder of them");
        }
        Path file;
        try {
            file = Path.of(path);
        } catch (InvalidPathException e) {
            throw ConfigError.at(originOf.apply("data.path"), "data.path '" + path + "' is not a valid path");
        }
        // A folder's files are read in name order (TextDataset), which also says when it holds none.
        if (!(Files.isRegularFile(file) || Files.isDirectory(file)) || !Files.isReadable(file)) {
            String resolved = file.isAbsolute() ? "" : " (resolved to " + file.toAbsolutePath().normalize() + ")";
            fail("data.path", "data.path '" + path + "' is not a readable file or folder" + resolved
                    + "; point it at an existing text file or a folder of them");
        }
    }

    private void train(TrainSection t) {
        atLeast("train.steps", t.steps(), 1);
        atLeast("train.batch_size", t.batchSize(), 1);
        atLeast("train.seq_len", t.seqLen(), 1);
        atLeast("train.recompute_every", t.recomputeEvery(), 1);
    }

    private void optimizer(OptimizerSection o, TrainSection t) {
        positive("optimizer.lr", o.lr());
        nonNegative("optimizer.min_lr", o.minLr());
        if (o.minLr() > o.lr()) {
            failAt(List.of("optimizer.min_lr", "optimizer.lr"),
                    "optimizer.min_lr (" + o.minLr() + ") must be <= optimizer.lr (" + o.lr()
                    + ")");
        }
        atLeast("optimizer.warmup_steps", o.warmupSteps(), 0);
        if (o.warmupSteps() > t.steps()) {
            failAt(List.of("optimizer.warmup_steps", "train.steps"), "optimizer.warmup_steps (" + o.warmupSteps()
                    + ") must be <= train.steps (" + t.steps() + ")");
        }
        nonNegative("optimizer.weight_decay", o.weightDecay());
        unitInterval("optimizer.beta1", o.beta1());
        unitInterval("optimizer.beta2", o.beta2());
        positive("optimizer.eps", o.eps());
        nonNegative("optimizer.grad_clip", o.gradClip()); // 0 turns clipping off
        adafactor(o.adafactor());
        came(o.came());
    }

    /** Every subsection is checked, not only the selected optimizer's: a bad value is a mistake either way. */
    private void adafactor(AdafactorSection a) {
        String at = "optimizer.adafactor.";
        positive(at + "eps1", a.eps1());
        nonNegative(at + "eps2", a.eps2());
        positive(at + "clip_threshold", a.clipThreshold());
        if (!(a.decayRate() < 0) || Double.isInfinite(a.decayRate())) {
            fail(at + "decay_rate", at + "decay_rate must be < 0, since beta2_t = 1 - t^decay_rate (got "
                    + a.decayRate() + ")");
        }
        if (a.beta1().isPresent()) {
            unitInterval(at + "beta1", a.beta1().getAsDouble());
        }
        nonNegative(at + "weight_decay", a.weightDecay());
        if (a.warmupInit() && !a.relativeStep()) {
            failAt(List.of(at + "warmup_init", at + "relative_step"), at + "warmup_init: true requires "
                    + at + "relative_step: true (warm-up ramps the relative step size)");
        }
    }

    private void came(CameSection c) {
        String at = "optimizer.came.";
        unitInterval(at + "beta1", c.beta1());
        unitInterval(at + "beta2", c.beta2());
        unitInterval(at + "beta3", c.beta3());
        positive(at + "eps1", c.eps1());
        positive(at + "eps2", c.eps2());
        positive(at + "clip_threshold", c.clipThreshold());
        nonNegative(at + "weight_decay", c.weightDecay());
    }

    private void mesh(MeshSection mesh, ModelSection m, TrainSection t) {
        atLeast("mesh.dp", mesh.dp(), 1);
        atLeast("mesh.sp", mesh.sp(), 1);
        atLeast("mesh.ep", mesh.ep(), 1);
        if (t.batchSize() % mesh.dp() != 0) {
            failAt(List.of("mesh.dp", "train.batch_size"), "train.batch_size (" + t.batchSize()
                    + ") must be divisible by mesh.dp (" + mesh.dp() + "), each data-parallel rank takes an equal part");
        }
        int parts = mesh.sp() == 1 ? 1 : mesh.spMode().partsOf(mesh.sp());
        if (t.seqLen() % parts != 0) {
            failAt(List.of("mesh.sp", "train.seq_len"), "train.seq_len (" + t.seqLen() + ") must be divisible by "
                    + (parts == mesh.sp() ? "mesh.sp (" + mesh.sp() + "), each sequence-parallel rank holds an equal"
                    + " segment" : "2 x mesh.sp (" + parts + ") for mesh.sp_mode: " + mesh.spMode().name().toLowerCase(Locale.ROOT)
                    + ", each sequence-parallel rank holds two equal zig-zag chunks"));
        }
        if (mesh.sp() > 1 && mesh.spMode() == SequenceScheme.ULYSSES && m.nHeads() % mesh.sp() != 0) {
            failAt(List.of("mesh.sp", "model.n_heads"), "model.n_heads (" + m.nHeads() + ") must be divisible by"
                    + " mesh.sp (" + mesh.sp() + ") for mesh.sp_mode: ulysses, each rank attends n_heads / sp heads;"
                    + " pick a divisor of n_heads, or mesh.sp_mode: allgather or ring");
        }
        if (mesh.world() % mesh.ep() != 0) {
            failAt(List.of("mesh.ep", "mesh.dp", "mesh.sp"), "mesh.ep (" + mesh.ep() + ") must divide the world size"
                    + " mesh.dp x mesh.sp = " + mesh.world());
        }
        if (mesh.ep() > 1 && !m.hasMoe()) {
            failAt(List.of("mesh.ep", "model.moe_every"), "mesh.ep (" + mesh.ep()
                    + ") needs MoE blocks to split; set mesh.ep: 1 for a dense model");
        }
        if (m.hasMoe() && m.nExperts() % mesh.ep() != 0) {
            failAt(List.of("mesh.ep", "model.n_experts"), "model.n_experts (" + m.nExperts()
                    + ") must be divisible by mesh.ep (" + mesh.ep() + "), each rank of an expert group owns an equal share");
        }
    }

    private void launch(LaunchSection l, MeshSection mesh) {
        atLeast("launch.workers", l.workers(), 0);
        if (l.workersFor(mesh) != mesh.world()) {
            failAt(List.of("launch.workers", "mesh.dp", "mesh.sp"), "launch.workers (" + l.workers()
                    + ") must equal the world size mesh.dp x mesh.sp = " + mesh.world() + " (or 0 for exactly that)");
        }
        atLeast("launch.worker_memory_mb", l.workerMemoryMb(), 256);
        port("launch.hazelcast_port", l.hazelcastPort(), mesh.world());
        port("launch.aeron_port", l.aeronPort(), mesh.world());
        int hz = l.hazelcastPort();
        int aeron = l.aeronPort();
        // 0 is picked at launch, clear of the other range (PortPicker)
        if (hz != 0 && aeron != 0 && hz < aeron + mesh.world() + 1 && aeron < hz + mesh.world() + 1) {
            failAt(List.of("launch.aeron_port", "launch.hazelcast_port"), "launch.aeron_port (" + aeron
                    + ") and launch.hazelcast_port (" + hz + ") ranges overlap; each takes world size + 1 = "
                    + (mesh.world() + 1) + " ports");
        }
        BindAddress.problem(l.bindAddress()).ifPresent(p -> {
            List<String> own = BindAddress.ofThisHost();
            fail("launch.bind_address", "launch.bind_address " + p + "; use "
                    + (own.isEmpty() ? "" : "an address of this host (" + String.join(", ", own) + "), or ")
                    + ClusterSettings.LOOPBACK + " when every process of the job runs on this host");
        });
    }

    private void fault(FaultSection f) {
        atLeast("fault.suspect_after_s", f.suspectAfterS(), 1);
        atMost("fault.dead_after_s", f.deadAfterS(), 86_400);
        if (f.deadAfterS() <= f.suspectAfterS()) {
            failAt(List.of("fault.dead_after_s", "fault.suspect_after_s"), "fault.dead_after_s (" + f.deadAfterS()
                    + ") must be greater than fault.suspect_after_s (" + f.suspectAfterS() + ")");
        }
    }

    /** 0: free ports picked at launch; anything else is the first of the job's range. */
    private void port(String path, int port, int world) {
        if ((port != 0 && port < 1024) || port + world > 65535) {
            fail(path, path + " must be in 1024.." + (65535 - world) + " so that world size + 1 = " + (world + 1)
                    + " ports fit, or 0 to pick free ports at launch (got " + port + ")");
        }
    }

    /**
     * Refuses a job with a tensor the kernels cannot address (the flat buffers that hold them have no limit), then
     * one whose per-rank estimate exceeds what each worker may use. Both are computed exactly, so no product of config values can wrap around.
     */
    private void memory(JobConfig config) {
        ModelConfig model = config.toModelConfig();
        int dtypeBytes = config.model().dtype() == Dtype.FLOAT64 ? 8 : 4;
        MemoryEstimate.firstOversized(model, dtypeBytes, config.mesh().toMesh(), config.train().batchSize(),
                config.train().seqLen()).ifPresent(o -> failAt(o.fields(), String.format(Locale.ROOT,
                "%s would take %d bytes, over the %d bytes one tensor can hold (a JDK limit: the kernels view it"
                + " through one ByteBuffer, which an int indexes); lower %s",
                o.buffer(), o.bytes(), o.limit(), String.join(" or ", o.fields()))));
        MemoryEstimate.Job job = MemoryPlan.job(config);
        long limit = (long) config.launch().workerMemoryMb() << 20;
        MemoryEstimate estimate = MemoryEstimate.of(job);
        if (estimate.total().compareTo(BigInteger.valueOf(limit)) > 0) {
            failAt(List.of("launch.worker_memory_mb", "zero.stage", "train.activation_checkpointing", "mesh.dp"),
                    String.format(Locale.ROOT, "each worker needs about %d MB (parameters %d, gradients %d,"
                    + " optimizer %d, activations %d, communication %d, runtime %d MB) but launch.worker_memory_mb"
                    + " is %d; %s", mb(estimate.total()), mb(estimate.paramBytes()), mb(estimate.gradBytes()),
                    mb(estimate.optimizerStateBytes()), mb(estimate.activationBytes()), mb(estimate.commBytes()),
                    mb(estimate.runtimeBytes()), config.launch().workerMemoryMb(),
                    MemoryPlan.smallestChange(job, BigInteger.valueOf(limit), estimate)));
        }
    }

    private static BigInteger mb(BigInteger bytes) {
        return bytes.shiftRight(20);
    }

    /** Planning checks above hold for any mesh; the runtime so far trains data- and expert-parallel meshes. */
    private void atLeast(String path, long value, long min) {
        if (value < min) {
            fail(path, path + " must be >= " + min + " (got " + value + ")");
        }
    }

    private void atMost(String path, long value, long max) {
        if (value > max) {
            fail(path, path + " must be <= " + max + " (got " + value + ")");
        }
    }

    private void positive(String path, double value) {
        if (!(value > 0) || Double.isInfinite(value)) {
            fail(path, path + " must be > 0 (got " + value + ")");
        }
    }

    private void nonNegative(String path, double value) {
        if (!(value >= 0) || Double.isInfinite(value)) {
            fail(path, path + " must be >= 0 (got " + value + ")");
        }
    }

    private void unitInterval(String path, double value) {
        if (!(value >= 0 && value < 1)) {
            fail(path, path + " must be in [0, 1) (got " + value + ")");
        }
    }

    private void fail(String path, String message) {
        throw ConfigError.at(originOf.apply(path), message);
    }

    /** A conflict between keys points at the first of them the user actually set. */
    private void failAt(List<String> paths, String message) {
        String origin = paths.stream().map(originOf).filter(o -> o != null && !o.isEmpty()).findFirst().orElse("");
        throw ConfigError.at(origin, message);
    }
}
