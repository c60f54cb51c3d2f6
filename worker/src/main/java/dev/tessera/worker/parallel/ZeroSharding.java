package dev.tessera.worker.parallel;

import dev.tessera.comm.CollectiveHandle;
import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.ReduceOp;
import dev.tessera.optimizers.GradNorm;
import dev.tessera.optimizers.OptimizerSpec;
import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.ShardPlan;
import dev.tessera.optimizers.kernel.NativeMemory;
import dev.tessera.worker.model.GradientSync;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.ParameterSync;
import dev.tessera.worker.model.ReplicaReducer;
import java.util.Arrays;
import org.agrona.UnsafeApi;
import org.agrona.concurrent.UnsafeBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * ZeRO (Rajbhandari et al. 2020; ALGORITHMS.md §3) over one data-parallel group. Rank {@code k} owns the
 * contiguous range {@code [bounds[k], bounds[k+1])} of the flat buffers, cut on row boundaries
 * ({@link ShardPlan}) so that the factored optimizers can shard their statistics exactly (§3.5).
 * <ul>
 *   <li>Stage 1: the optimizer keeps state for the owned range only; after backward the gradient buffer is
 *       reduce-scattered in one collective, the owner steps, the parameters are all-gathered.</li>
 *   <li>Stage 2: also gradients: each bucket is reduce-scattered as soon as backward has finished it, and
 *       once that is done the bucket's non-owned gradient pages go back to the OS (on the gradient group's thread,
 *       while backward runs on).</li>
 *   <li>Stage 3: also parameters: each unit's (embedding, block, head) parameters are all-gathered just before
 *       use, the next unit's gather is already running (prefetch), and the non-owned pages are freed after use.
 *       Backward lets a block go in parts as they are through (its down projection, then its FFN half), and
 *       prefetches only the next block's attention half, which its recomputed forward reads first; the FFN half
 *       is gathered when that block's backward starts, after the last block's gradients are reduced. A block that
 *       recomputes its forward lets its attention half go until its FFN half is through, and gathers it again then.
 *       So a rank holds at most about one block's parameters beyond its shards. Nothing is gathered after the
 *       optimizer step.</li>
 * </ul>
 * The flat buffers keep their full virtual size so every layer's views stay valid; "freeing" returns the
 * physical pages ({@link PageMemory}), which read as zeros until written again. The collectives work in place
 * on the flat buffers, so ZeRO adds no copies. A collective over more than one view can span (a whole buffer
 * or unit over 1 GiB) runs as one collective per {@link NativeMemory#windows window}, each with the shard
 * bounds clipped to it.
 */
public final class ZeroSharding implements GradientSync, ParameterSync {

    private final ProcessGroup gradGroup;
    private final ProcessGroup paramGroup;
    private final ReplicaReducer sums;
    private final double[] squares = new double[1];
    private final int stage;
    private final DType dtype;
    private final int width;
    private final FlatRegion region;       // what this group shards: the whole buffer, or the dense or expert part
    private final boolean wholeBuffer;
    private final long[] bounds;
    private final Shard shard;
    private final INDArray params;
    private final INDArray grads;
    private final INDArray ownedGrads;
    private final Windows paramWindows;     // stage 1/2: the whole buffers, for the step's all-gather
    private final Windows gradWindows;      // stage 1: for the one reduce-scatter after backward

    private final long[] bucketStart;       // element ranges of the gradient buckets, last tensors first
    private final long[] bucketEnd;
    private final UnsafeBuffer[] bucketViews;
    private final long[][] bucketBounds;    // the shard bounds relative to each bucket
    private final CollectiveHandle[] reducing;
    private final Runnable[] freeBucket;    // gives a bucket's non-owned pages back to the OS
    private final CollectiveHandle[] freeing; // queued on the gradient group's thread right after the reduction
    private int launched;
    private int released;

    /**
     * Stage 2/3: gradient buckets that may wait for their reduce-scatter before backward waits for the oldest
     * (DeepSpeed bounds them the same way). Unbounded, reductions that fall behind backward would keep every
     * gradient resident, which is what stage 2 exists to avoid.
     */
    static final int MAX_BUCKETS_IN_FLIGHT = 2;

    private final long[] unitBounds;        // stage 3: the model's units, in buffer order
    private final long[] ffnStarts;         // per unit, where its second gather part starts; null: one part
    private final Windows[][] partWindows;  // per unit, its two gather parts: up to its FFN half, and that half
    private final CollectiveHandle[][][] gathering; // per unit, part and window, while its gather runs
    private final boolean[][] gatherStarted;

    private final MemoryProbe probe;

    /**
     * {@code gradGroup} carries the gradient reduce-scatters and {@code paramGroup} the parameter all-gathers
     * (the same ranks in the same order: two groups, so a prefetch never queues behind a gradient bucket);
     * {@code sums} adds the few scalars the shards must agree on.
     */
    public ZeroSharding(ProcessGroup gradGroup, ProcessGroup paramGroup, ReplicaReducer sums, int stage,
                        ParameterStore store, OptimizerSpec optimizer, long[] unitBounds, long[] ffnStarts,
                        long bucketElements, MemoryProbe probe) {
        this(gradGroup, paramGroup, sums, stage, store, FlatRegion.whole(store), optimizer, unitBounds, ffnStarts,
                bucketElements, probe);
    }

    /**
     * Sharding only {@code region} of the flat buffers, whose units (stage 3) are {@code unitBounds}: the rest
     * belongs to another group. {@code ffnStarts} gives, per unit, where its FFN half starts (its end where it has
     * none; null: no unit is gathered in parts). {@code sums} then adds this region's squares over whichever group
     * makes them the
     * region's whole gradient norm.
     */
    ZeroSharding(ProcessGroup gradGroup, ProcessGroup paramGroup, ReplicaReducer sums, int stage,
                 ParameterStore store, FlatRegion region, OptimizerSpec optimizer, long[] unitBounds,
                 long[] ffnStarts, long bucketElements, MemoryProbe probe) {
        if (stage < 1 || stage > 3) {
            throw new IllegalArgumentException("ZeRO stage must be 1, 2 or 3, got " + stage);
        }
        if (gradGroup.size() != paramGroup.size() || gradGroup.rank() != paramGroup.rank()) {
            throw new IllegalArgumentException("ZeRO's gradient and parameter groups must hold the same ranks");
        }
        if (stage == 3 && (unitBounds[0] < region.from() || unitBounds[unitBounds.length - 1] > region.to())) {
            throw new IllegalArgumentException("ZeRO-3's units " + Arrays.toString(unitBounds)
                    + " must lie in the region it shards, [" + region.from() + ", " + region.to() + ")");
        }
        this.gradGroup = gradGroup;
        this.paramGroup = paramGroup;
        this.sums = sums;
        this.stage = stage;
        this.dtype = store.dataType() == DataType.DOUBLE ? DType.FLOAT64 : DType.FLOAT32;
        this.width = store.dataType().width();
        this.region = region;
        this.wholeBuffer = region.isWhole(store);
        this.bounds = region.shardBounds(gradGroup.size(), optimizer);
        this.shard = new Shard(bounds[gradGroup.rank()], bounds[gradGroup.rank() + 1]);
        this.params = store.params();
        this.grads = store.grads();
        this.ownedGrads = shard.length() == 0 ? null : slice(store.grads(), shard);
        this.probe = probe == null ? MemoryProbe.OFF : probe;
        this.paramWindows = new Windows(params, bounds, region.from(), region.to());
        this.gradWindows = new Windows(grads, bounds, region.from(), region.to());

        long[][] ranges = Buckets.reverseOrder(region.tensors(), bucketElements, NativeMemory.MAX_VIEW_BYTES / width);
        bucketStart = new long[ranges.length];
        bucketEnd = new long[ranges.length];
        bucketViews = new UnsafeBuffer[ranges.length];
        bucketBounds = new long[ranges.length][];
        for (int b = 0; b < ranges.length; b++) {
            bucketStart[b] = ranges[b][0];
            bucketEnd[b] = ranges[b][1];
            bucketViews[b] = NativeMemory.unsafe(grads, bucketStart[b], bucketEnd[b]);
            bucketBounds[b] = clipped(bounds, bucketStart[b], bucketEnd[b]);
        }
        reducing = new CollectiveHandle[ranges.length];
        freeing = new CollectiveHandle[ranges.length];
        freeBucket = new Runnable[ranges.length];
        for (int b = 0; b < ranges.length; b++) {
            long from = bucketStart[b];
            long to = bucketEnd[b];
            freeBucket[b] = () -> freeOutside(grads, from, to);
        }

        this.unitBounds = unitBounds.clone();
        this.ffnStarts = ffnStarts == null ? null : ffnStarts.clone();
        int units = unitBounds.length - 1;
        partWindows = new Windows[units][2];
        gathering = new CollectiveHandle[units][2][];
        for (int u = 0; u < units; u++) {
            long split = ffnStarts == null ? unitBounds[u + 1] : ffnStarts[u];
            if (split < unitBounds[u] || split > unitBounds[u + 1]) {
                throw new IllegalArgumentException("unit " + u + "'s FFN half starts at " + split + ", outside ["
                        + unitBounds[u] + ", " + unitBounds[u + 1] + ")");
            }
            partWindows[u][0] = new Windows(params, bounds, unitBounds[u], split);
            partWindows[u][1] = new Windows(params, bounds, split, unitBounds[u + 1]);
            for (int part = 0; part < 2; part++) {
                gathering[u][part] = new CollectiveHandle[partWindows[u][part].views.length];
            }
        }
        gatherStarted = new boolean[units][2];
    }

    /**
     * Elements {@code [from, to)} of a flat buffer as views of at most {@link NativeMemory#WINDOW_BYTES} (one
     * when the range is smaller), each with the shard bounds clipped to it; made once.
     */
    private static final class Windows {
        final UnsafeBuffer[] views;
        final long[][] shardBounds;

        Windows(INDArray flat, long[] bounds, long from, long to) {
            long[] cuts = NativeMemory.windows(to - from, flat.dataType().width());
            views = new UnsafeBuffer[cuts.length - 1];
            shardBounds = new long[views.length][];
            for (int w = 0; w < views.length; w++) {
                views[w] = NativeMemory.unsafe(flat, from + cuts[w], from + cuts[w + 1]);
                shardBounds[w] = clipped(bounds, from + cuts[w], from + cuts[w + 1]);
            }
        }
    }

    /** The range of the flat buffers this rank's optimizer owns. */
    public Shard shard() {
        return shard;
    }

    // ------------------------------------------------------------------ gradients

    @Override
    public void zero(ParameterStore store) {
        if (stage == 1) {
            if (wholeBuffer) {
                store.zeroGrads();
            } else if (region.length() > 0) {
                slice(grads, region.shard()).assign(0);
            }
            return;
        }
        // Every page goes back to the OS and reads as zeros, the owned range's too, so a gradient is resident only
        // from when backward writes it until its bucket is reduced (or, owned, until the step ends). Only partial
        // pages at the edges are written.
        freeRange(grads, region.from(), region.to());
    }

    @Override
    public void ready(long fromElement) {
        if (stage == 1) {
            return; // stage 1 accumulates locally and reduces once, after backward
        }
        probe.sample(this);
        while (launched < bucketViews.length && bucketStart[launched] >= fromElement) {
            reducing[launched] = gradGroup.reduceScatterInPlaceAsync(bucketViews[launched], bucketBounds[launched],
                    dtype, ReduceOp.SUM);
            // The pages go as soon as the reduction is done, while backward runs on: not at the next ready(),
            // which comes only after the next layer has written its own gradients.
            freeing[launched] = gradGroup.runAsync("freeing a reduced gradient bucket", freeBucket[launched]);
            launched++;
        }
        freeReducedBuckets(false);
        while (launched - released > MAX_BUCKETS_IN_FLIGHT) {
            freeOldestBucket();
        }
    }

    @Override
    public void finish() {
        if (stage == 1) {
            probe.sample(this);
            for (int w = 0; w < gradWindows.views.length; w++) {
                gradGroup.reduceScatterInPlace(gradWindows.views[w], gradWindows.shardBounds[w], dtype, ReduceOp.SUM);
            }
            return;
        }
        ready(0);
        freeReducedBuckets(true);
        launched = 0;
        released = 0;
    }

    /** Retires every bucket whose non-owned pages are already freed (waiting for all of them if asked). */
    private void freeReducedBuckets(boolean wait) {
        while (released < launched && (wait || freeing[released].isDone())) {
            freeOldestBucket();
        }
    }

    /** Waits until the oldest bucket in flight is reduced and its non-owned pages are freed. */
    private void freeOldestBucket() {
        reducing[released].await(); // a failed reduction is reported here, on the step's thread
        freeing[released].await();
        reducing[released] = null;
        freeing[released] = null;
        released++;
    }

    /** The owned range's squares, summed over the group: the squared norm of the whole reduced gradient. */
    @Override
    public double sumOfSquares(INDArray unused) {
        squares[0] = ownedGrads == null ? 0.0 : GradNorm.sumOfSquares(ownedGrads);
        sums.sumInPlace(squares);
        return squares[0];
    }

    // ------------------------------------------------------------------ parameters

    /**
     * Stage 3: waits for {@code unit}'s gather (starting what no prefetch did) and starts {@code next}'s. In
     * backward, the gradient buckets whose pages went back to the OS while the last unit ran are retired first;
     * where the unit's FFN half is still to be gathered (backward prefetched only its attention half), the last
     * unit's reductions are waited for first, so its gradients are gone before those parameters arrive.
     */
    @Override
    public void acquire(int unit, int next) {
        if (stage < 3) {
            return;
        }
        freeReducedBuckets(false);
        if (!gatherStarted[unit][0]) {
            gather(unit, 0);
        }
        if (!gatherStarted[unit][1]) {
            if (partWindows[unit][1].views.length > 0) {
                freeReducedBuckets(true);
            }
            gather(unit, 1);
        }
        if (next >= 0) {
            for (int part = 0; part < 2; part++) {
                if (!gatherStarted[next][part]) {
                    gather(next, part);
                }
            }
        }
        awaitGather(unit, 0);
        awaitGather(unit, 1);
        probe.sample(this);
    }

    @Override
    public void release(int unit) {
        if (stage < 3) {
            return;
        }
        freeOutside(params, unitBounds[unit], unitBounds[unit + 1]);
    }

    /**
     * Stage 3: frees {@code unit}'s parameters from {@code fromElement} on (those it does not own), and starts
     * gathering {@code next}'s attention half.
     */
    @Override
    public void releaseFrom(int unit, long fromElement, int next) {
        if (stage < 3) {
            return;
        }
        probe.sample(this);
        freeOutside(params, Math.max(fromElement, unitBounds[unit]), unitBounds[unit + 1]);
        if (next >= 0 && !gatherStarted[next][0]) {
            gather(next, 0);
        }
    }

    /** Stage 3: frees {@code unit}'s attention half (what it does not own), where units are gathered in parts. */
    @Override
    public void releaseAttention(int unit) {
        if (stage < 3 || ffnStarts == null) {
            return;
        }
        probe.sample(this);
        freeOutside(params, unitBounds[unit], ffnStarts[unit]);
    }

    /**
     * Stage 3: gathers {@code unit}'s attention half again, once the gradients in flight (the FFN half's) are
     * reduced and gone, and starts gathering {@code next}'s.
     */
    @Override
    public void reacquireAttention(int unit, int next) {
        if (stage < 3) {
            return;
        }
        if (ffnStarts != null) {
            freeReducedBuckets(true);
            gather(unit, 0);
        }
        if (next >= 0 && !gatherStarted[next][0]) {
            gather(next, 0);
        }
        if (ffnStarts != null) {
            awaitGather(unit, 0);
        }
        probe.sample(this);
    }

    @Override
    public void afterUpdate() {
        if (stage >= 2) {
            // The step has read the gradients, and the next backward starts from zeros: their pages go back to the
            // OS now, so evaluation and checkpoints run without them.
            freeRange(grads, region.from(), region.to());
        }
        if (stage < 3) {
            for (int w = 0; w < paramWindows.views.length; w++) {
                paramGroup.allGatherInPlace(paramWindows.views[w], paramWindows.shardBounds[w], dtype);
            }
        }
    }

    private void awaitGather(int unit, int part) {
        CollectiveHandle[] handles = gathering[unit][part];
        for (int w = 0; w < handles.length; w++) {
            handles[w].await();
            handles[w] = null;
        }
        gatherStarted[unit][part] = false;
    }

    private void gather(int unit, int part) {
        Windows windows = partWindows[unit][part];
        for (int w = 0; w < windows.views.length; w++) {
            gathering[unit][part][w] = paramGroup.allGatherInPlaceAsync(windows.views[w], windows.shardBounds[w],
                    dtype);
        }
        gatherStarted[unit][part] = true;
    }

    // ------------------------------------------------------------------ memory

    /** Resident bytes of the parameter and gradient buffers now. */
    public long[] residentBytes() {
        return new long[] {PageMemory.residentBytes(NativeMemory.address(params), NativeMemory.byteSize(params)),
                PageMemory.residentBytes(NativeMemory.address(grads), NativeMemory.byteSize(grads))};
    }

    /**
     * Frees the whole pages of {@code [from, to)} outside the owned range and zeroes what is left of it (the
     * partial pages at the edges), so all of it reads as zeros.
     */
    private void freeOutside(INDArray buffer, long from, long to) {
        freeRange(buffer, from, Math.min(to, shard.from()));
        freeRange(buffer, Math.max(from, shard.to()), to);
    }

    private void freeRange(INDArray buffer, long from, long to) {
        if (to <= from) {
            return;
        }
        long start = NativeMemory.address(buffer, from);
        long end = NativeMemory.address(buffer, to);
        long pageFrom = Math.min(PageMemory.pageUp(start), end);
        long pageTo = Math.max(PageMemory.pageDown(end), pageFrom);
        PageMemory.release(pageFrom, pageTo - pageFrom);
        // Edges that share a page with memory that stays (each under a page): written, not freed.
        zero(start, pageFrom);
        zero(pageTo, end);
    }

    /** Zeroes {@code [from, to)} by address: thread-safe, as the gradient group's thread frees buckets too. */
    private static void zero(long from, long to) {
        if (to > from) {
            UnsafeApi.setMemory(from, to - from, (byte) 0);
        }
    }

    // ------------------------------------------------------------------ layout

    private static INDArray slice(INDArray flat, Shard shard) {
        return Nd4j.create(flat.data(), new long[] {shard.length()}, new long[] {1}, flat.offset() + shard.from(), 'c',
                flat.dataType());
    }

    /** The shard bounds as offsets inside {@code [from, to)}, each clamped to it. */
    static long[] clipped(long[] bounds, long from, long to) {
        long[] out = new long[bounds.length];
        for (int k = 0; k < bounds.length; k++) {
            out[k] = Math.min(Math.max(bounds[k], from), to) - from;
        }
        return out;
    }
}
