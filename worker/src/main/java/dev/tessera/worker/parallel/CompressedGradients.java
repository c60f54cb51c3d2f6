package dev.tessera.worker.parallel;

import dev.tessera.comm.CollectiveHandle;
import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.compress.BucketLayer;
import dev.tessera.comm.compress.BucketReduction;
import dev.tessera.comm.compress.Encoder;
import dev.tessera.comm.compress.FedZip;
import dev.tessera.comm.compress.GatheredReduction;
import dev.tessera.comm.compress.LayerObserver;
import dev.tessera.comm.compress.TopK;
import dev.tessera.worker.job.CompressionMethod;
import dev.tessera.worker.job.CompressionSection;
import dev.tessera.worker.model.ParameterStore;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.agrona.MutableDirectBuffer;

/**
 * Data-parallel gradients in compressed form ({@code compression:}, ALGORITHMS.md 4-5): one
 * {@link BucketReduction} per gradient bucket, each run on the group's background thread as soon as backward has
 * finished the bucket, so encoding and exchange overlap the rest of backward as the plain all-reduce does. A
 * tensor with fewer than {@code min_elements} elements, or a vector, travels whole inside its bucket's exchange.
 * Rounds count the steps: a round ends with the last bucket, and seeds the round's random choices.
 */
public final class CompressedGradients implements GradientCodec {

    private final CompressionSection settings;
    private final long seed;
    private BucketReduction[] reductions;
    private long round;

    public CompressedGradients(CompressionSection settings, long seed) {
        if (!settings.enabled()) {
            throw new IllegalArgumentException("compression.method: none compresses nothing");
        }
        this.settings = settings;
        this.seed = seed;
    }

    @Override
    public void plan(int members, List<ParameterStore.Tensor> tensors, long[][] bucketRanges) {
        if (reductions != null) {
            throw new IllegalStateException("compressed gradients are planned once, for one gradient buffer");
        }
        reductions = new BucketReduction[bucketRanges.length];
        for (int b = 0; b < bucketRanges.length; b++) {
            List<BucketLayer> layers = new ArrayList<>();
            List<Encoder> encoders = new ArrayList<>();
            for (ParameterStore.Tensor t : tensors) {
                if (t.offset() < bucketRanges[b][0] || t.end() > bucketRanges[b][1]) {
                    continue;
                }
                long[] shape = t.shape();
                int rows = Math.toIntExact(shape.length < 2 ? t.numel() : shape[0]);
                int cols = Math.toIntExact(t.numel() / rows);
                BucketLayer layer = new BucketLayer(t.name(), Math.toIntExact(t.offset() - bucketRanges[b][0]), rows,
                        cols);
                layers.add(layer);
                encoders.add(compresses(layer) ? encoder() : null);
            }
            boolean errorFeedback = settings.method() != CompressionMethod.FEDZIP || settings.fedzipErrorFeedback();
            reductions[b] = new GatheredReduction(layers, encoders.toArray(new Encoder[0]), members, seed,
                    errorFeedback, LayerObserver.NONE);
        }
    }

    private boolean compresses(BucketLayer layer) {
        return layer.isMatrix() && layer.n() >= settings.minElements();
    }

    private Encoder encoder() {
        return switch (settings.method()) {
            case TOPK -> new TopK(settings.topkDensity());
            case FEDZIP -> new FedZip(settings.fedzipKeep(), FedZip.Encoding.valueOf(settings.fedzipEncoding().name()));
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
        if (bucket == reductions.length - 1) {
            round++;
        }
        BucketReduction reduction = reductions[bucket];
        return group.runAsync("compressed all-reduce of gradient bucket " + bucket,
                () -> reduction.reduce(group, gradients, thisRound));
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

    /** Continues after {@code completed} steps (a resumed run). */
    public void resumeAt(long completed) {
        round = completed;
    }
}
