package dev.tessera.worker.parallel;

import dev.tessera.comm.CollectiveHandle;
import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.compress.BucketLayer;
import dev.tessera.comm.compress.BucketReduction;
import dev.tessera.comm.compress.EncodedReduction;
import dev.tessera.comm.compress.Encoder;
import dev.tessera.comm.compress.EncoderCandidates;
import dev.tessera.comm.compress.FedZip;
import dev.tessera.comm.compress.GatheredReduction;
import dev.tessera.comm.compress.LGreCoCandidates;
import dev.tessera.comm.compress.LGreCoSchedule;
import dev.tessera.comm.compress.LGreCoSelection;
import dev.tessera.comm.compress.LayerObserver;
import dev.tessera.comm.compress.LowRankReduction;
import dev.tessera.comm.compress.PowerSgdCandidates;
import dev.tessera.comm.compress.Qsgd;
import dev.tessera.comm.compress.ScatteredReduction;
import dev.tessera.comm.compress.TopK;
import dev.tessera.comm.compress.CompressionMethod;
import dev.tessera.comm.compress.CompressionSpec;
import dev.tessera.worker.model.ParameterStore;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Locale;
import java.util.stream.DoubleStream;
import java.util.stream.IntStream;
import org.agrona.MutableDirectBuffer;

/**
 * Data-parallel gradients in compressed form ({@code compression:}, ALGORITHMS.md 4-5): one
 * {@link BucketReduction} per gradient bucket, each run on the group's background thread as soon as backward has
 * finished the bucket, so encoding and exchange overlap the rest of backward as the plain all-reduce does. A
 * tensor with fewer than {@code min_elements} elements, or a vector, travels whole inside its bucket's exchange.
 * Rounds count the steps: a round ends with the last bucket, and seeds the round's random choices. How a bucket is
 * summed follows the method (ALGORITHMS.md section 4): QSGD reduce-scatters and all-gathers quantised chunks
 * ({@link ScatteredReduction}), so each rank receives about two encodings' worth of the bucket whatever the group's
 * size; Top-K and FedZip gather every rank's encoding ({@link GatheredReduction}), since sparse encodings of different
 * ranks do not add up to one of the same size; PowerSGD ({@link LowRankReduction}) all-reduces each bucket's low-rank
 * factors. With {@code lgreco: true} the compressed layers' settings (an encoder's density or bits, or PowerSGD's
 * rank) are re-chosen per layer ({@link LGreCoSelection}): the first bucket of a round switches them, on every rank
 * at once.
 */
public final class CompressedGradients implements GradientCodec {

    private final CompressionSpec settings;
    private final long seed;
    private final long steps;
    private BucketReduction[] reductions;
    private int[][] jobLayers;             // per bucket and layer, its encoded-layer number in the job (-1: raw)
    private LGreCoSelection selection;     // null without L-GreCo
    private String[] encodedNames;         // per encoded layer of the job, its tensor's name
    private double[][] settingOf;          // per encoded layer and candidate, its setting (density, bits, rank)
    private LayerSwitch switcher;          // puts a layer's chosen candidate in force in its bucket's reduction
    private volatile boolean choiceChanged;
    private long round;

    /** {@code steps}: the job's, from which L-GreCo's default warm-up (2%) is taken. */
    public CompressedGradients(CompressionSpec settings, long seed, long steps) {
        if (!settings.enabled()) {
            throw new IllegalArgumentException("compression.method: none compresses nothing");
        }
        this.settings = settings;
        this.seed = seed;
        this.steps = steps;
    }

    @Override
    public void plan(ProcessGroup group, List<ParameterStore.Tensor> tensors, long[][] bucketRanges) {
        if (reductions != null) {
            throw new IllegalStateException("compressed gradients are planned once, for one gradient buffer");
        }
        List<List<BucketLayer>> buckets = new ArrayList<>();
        List<String> names = new ArrayList<>();
        jobLayers = new int[bucketRanges.length][];
        int encoded = 0;
        for (long[] range : bucketRanges) {
            List<BucketLayer> layers = new ArrayList<>();
            for (ParameterStore.Tensor t : tensors) {
                if (t.offset() >= range[0] && t.end() <= range[1]) {
                    long[] shape = t.shape();
                    int rows = Math.toIntExact(shape.length < 2 ? t.numel() : shape[0]);
                    layers.add(new BucketLayer(t.name(), Math.toIntExact(t.offset() - range[0]), rows,
                            Math.toIntExact(t.numel() / rows)));
                }
            }
            int[] numbers = new int[layers.size()];
            for (int l = 0; l < numbers.length; l++) {
                numbers[l] = compresses(layers.get(l)) ? encoded++ : -1;
                if (numbers[l] >= 0) {
                    names.add(layers.get(l).name());
                }
            }
            jobLayers[buckets.size()] = numbers;
            buckets.add(layers);
        }
        reductions = new BucketReduction[bucketRanges.length];
        encodedNames = names.toArray(new String[0]);
        if (settings.method() == CompressionMethod.POWERSGD) {
            planLowRank(group, buckets, encoded);
            return;
        }
        Family family = family();
        settingOf = new double[encoded][];
        Arrays.fill(settingOf, family.settings());
        if (settings.lgreco()) {
            selection = new LGreCoSelection(new EncoderCandidates(family.encoders(), family.uniform(), encoded),
                    schedule(), settings.lgrecoResolution(), settings.lgrecoSlack(), settings.lgrecoError(),
                    group.rank() == 0);
        }
        boolean errorFeedback = settings.method() != CompressionMethod.FEDZIP || settings.fedzipErrorFeedback();
        EncodedReduction[] encodedReductions = new EncodedReduction[reductions.length];
        for (int b = 0; b < reductions.length; b++) {
            Encoder[] encoders = new Encoder[jobLayers[b].length];
            for (int l = 0; l < encoders.length; l++) {
                encoders[l] = jobLayers[b][l] < 0 ? null : family.encoders()[family.uniform()];
            }
            LayerObserver observer = observer(b);
            encodedReductions[b] = settings.method() == CompressionMethod.QSGD
                    ? new ScatteredReduction(buckets.get(b), encoders, group.size(), seed, observer)
                    : new GatheredReduction(buckets.get(b), encoders, group.size(), seed, errorFeedback, observer);
            reductions[b] = encodedReductions[b];
        }
        switcher = (b, l, c) -> encodedReductions[b].use(l, family.encoders()[c]);
    }

    /**
     * PowerSGD at the configured rank; with L-GreCo each matrix's rank is chosen from its own grid (capped by its
     * shape, {@link PowerSgdCandidates}), and a choice resizes the layer's factors in its bucket's reduction.
     */
    private void planLowRank(ProcessGroup group, List<List<BucketLayer>> buckets, int encoded) {
        int[] rows = new int[encoded];
        int[] cols = new int[encoded];
        for (int b = 0; b < reductions.length; b++) {
            for (int l = 0; l < jobLayers[b].length; l++) {
                if (jobLayers[b][l] >= 0) {
                    rows[jobLayers[b][l]] = buckets.get(b).get(l).rows();
                    cols[jobLayers[b][l]] = buckets.get(b).get(l).cols();
                }
            }
        }
        PowerSgdCandidates ranks = new PowerSgdCandidates(rows, cols, settings.powersgdRank(), seed);
        settingOf = new double[encoded][];
        for (int j = 0; j < encoded; j++) {
            settingOf[j] = new double[ranks.count(j)];
            for (int c = 0; c < settingOf[j].length; c++) {
                settingOf[j][c] = ranks.rank(j, c);
            }
        }
        if (settings.lgreco()) {
            selection = new LGreCoSelection(ranks, schedule(), settings.lgrecoResolution(), settings.lgrecoSlack(),
                    settings.lgrecoError(), group.rank() == 0);
        }
        LowRankReduction[] lowRank = new LowRankReduction[reductions.length];
        for (int b = 0; b < reductions.length; b++) {
            int[] bucketRanks = new int[jobLayers[b].length];
            for (int l = 0; l < bucketRanks.length; l++) {
                bucketRanks[l] = jobLayers[b][l] < 0 ? 0 : settings.powersgdRank();
            }
            lowRank[b] = new LowRankReduction(buckets.get(b), bucketRanks, group.size(), seed, observer(b));
            reductions[b] = lowRank[b];
        }
        switcher = (b, l, c) -> lowRank[b].useRank(l, ranks.rank(jobLayers[b][l], c));
    }

    /** L-GreCo's schedule: the configured warm-up, or 2% of the job's steps. */
    private LGreCoSchedule schedule() {
        long warmup = settings.lgrecoWarmupSteps() > 0 ? settings.lgrecoWarmupSteps()
                : Math.max(1, Math.round(0.02 * steps));
        return new LGreCoSchedule(warmup, settings.lgrecoPeriod());
    }

    private LayerObserver observer(int bucket) {
        return selection == null ? LayerObserver.NONE : selection.forBucket(jobLayers[bucket]);
    }

    /** Puts candidate {@code c} in force for layer {@code l} of bucket {@code b}, from its next reduction on. */
    private interface LayerSwitch {
        void use(int b, int l, int c);
    }

    private boolean compresses(BucketLayer layer) {
        return layer.isMatrix() && layer.n() >= settings.minElements();
    }

    /** A method's settings, one encoder each, and which of them is the configured (uniform) one. */
    private record Family(Encoder[] encoders, double[] settings, int uniform) {
    }

    /**
     * The method's settings: L-GreCo's candidate grid with the configured setting added as its uniform default, or
     * the configured setting alone.
     */
    private Family family() {
        boolean grid = settings.lgreco();
        return switch (settings.method()) {
            case TOPK -> {
                double[] densities = DoubleStream.concat(grid ? Arrays.stream(LGreCoCandidates.topKDensities()
                        .values()) : DoubleStream.empty(), DoubleStream.of(settings.topkDensity()))
                        .sorted().distinct().toArray();
                yield new Family(Arrays.stream(densities).mapToObj(TopK::new).toArray(Encoder[]::new), densities,
                        Arrays.binarySearch(densities, settings.topkDensity()));
            }
            case QSGD -> {
                int[] bits = IntStream.concat(grid ? Arrays.stream(LGreCoCandidates.qsgdBits().values())
                        : IntStream.empty(), IntStream.of(settings.qsgdBits())).sorted().distinct().toArray();
                yield new Family(Arrays.stream(bits).mapToObj(b -> new Qsgd(b, settings.qsgdBucket()))
                        .toArray(Encoder[]::new), Arrays.stream(bits).asDoubleStream().toArray(),
                        Arrays.binarySearch(bits, settings.qsgdBits()));
            }
            case FEDZIP -> new Family(new Encoder[] {new FedZip(settings.fedzipKeep(),
                    settings.fedzipEncoding())},
                    new double[] {settings.fedzipKeep()}, 0);
            default -> throw new IllegalArgumentException("compression.method: "
                    + settings.method().name().toLowerCase(Locale.ROOT) + " is not built yet");
        };
    }

    @Override
    public CollectiveHandle reduceAsync(ProcessGroup group, int bucket, MutableDirectBuffer gradients, DType dtype) {
        if (dtype != DType.FLOAT32) {
            throw new IllegalArgumentException("gradient compression encodes float32 gradients, not " + dtype);
        }
        long thisRound = round;
        boolean last = bucket == reductions.length - 1;
        if (last) {
            round++;
        }
        BucketReduction reduction = reductions[bucket];
        return group.runAsync("compressed all-reduce of gradient bucket " + bucket, () -> {
            if (bucket == 0 && selection != null && selection.beginRound(group, thisRound)) {
                switchSettings();
                choiceChanged = true;
            }
            reduction.reduce(group, gradients, thisRound);
            if (last && selection != null) {
                selection.endRound();
            }
        });
    }

    private void switchSettings() {
        for (int b = 0; b < reductions.length; b++) {
            for (int l = 0; l < jobLayers[b].length; l++) {
                if (jobLayers[b][l] >= 0) {
                    switcher.use(b, l, selection.chosen(jobLayers[b][l]));
                }
            }
        }
    }

    /** Whether a gradient buffer was planned: false for a single replica, which sends nothing. */
    public boolean isPlanned() {
        return reductions != null;
    }

    /** Steps reduced so far: the next round's number. */
    public long round() {
        return round;
    }

    /** The reductions, bucket by bucket (0: the last tensors'), whose residuals a checkpoint keeps. */
    public List<BucketReduction> reductions() {
        return List.of(reductions);
    }

    /** L-GreCo's choice in force, a candidate index per encoded layer; null without L-GreCo. */
    public int[] choice() {
        return selection == null ? null : selection.choice();
    }

    /** L-GreCo's solved choice not yet in force (rank 0, between a selecting step and the next); else null. */
    public int[] pendingChoice() {
        return selection == null ? null : selection.pending();
    }

    /**
     * L-GreCo's setting per compressed layer (Top-K density, QSGD bits, PowerSGD rank) if a new choice came into force since the
     * last call, else empty. Call after the step's reductions are done.
     */
    public Map<String, Double> takeNewChoice() {
        if (!choiceChanged) {
            return Map.of();
        }
        choiceChanged = false;
        int[] choice = selection.choice();
        Map<String, Double> settings = new LinkedHashMap<>();
        for (int l = 0; l < choice.length; l++) {
            settings.put(encodedNames[l], settingOf[l][choice[l]]);
        }
        return settings;
    }

    /**
     * Continues after {@code completed} steps (a resumed run), with L-GreCo's choices as they were, put in force at
     * once: call it before loading the reductions' {@link BucketReduction#state}, whose PowerSGD Qs have the ranks of
     * the choice in force.
     */
    public void resumeAt(long completed, int[] choice, int[] pending) {
        round = completed;
        if (selection != null && choice != null) {
            selection.restore(choice, pending);
            switchSettings(); // before a checkpoint loads PowerSGD's Qs, which have the restored ranks' shapes
        }
    }
}
