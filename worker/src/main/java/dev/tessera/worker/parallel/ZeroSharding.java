package dev.tessera.worker.parallel;

import dev.tessera.comm.CollectiveHandle;
import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.ReduceOp;
import dev.tessera.optimizers.GradNorm;
import dev.tessera.optimizers.OptimizerSpec;
import dev.tessera.optimizers.ParamSpan;
import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.ShardPlan;
import dev.tessera.worker.model.GradientSync;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.ParameterSync;
import dev.tessera.worker.model.ReplicaReducer;
import java.util.List;
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
 *       once that is done the bucket's non-owned gradient pages go back to the OS.</li>
 *   <li>Stage 3: also parameters: each unit's (embedding, block, head) parameters are all-gathered just before
 *       use, the next unit's gather is already running (prefetch), and the non-owned pages are freed after use.
 *       Nothing is gathered after the optimizer step.</li>
 * </ul>
 * The flat buffers keep their full virtual size so every layer's views stay valid; "freeing" returns the
 * physical pages ({@link PageMemory}), which read as zeros until written again. The collectives work in place
 * on the flat buffers, so ZeRO adds no copies.
 */
public final class ZeroSharding implements GradientSync, ParameterSync {

    private final ProcessGroup gradGroup;
    private final ProcessGroup paramGroup;
    private final ReplicaReducer sums;
    private final double[] squares = new double[1];
    private final int stage;
    private final DType dtype;
    private final int width;
    private final long[] bounds;
    private final Shard shard;
    private final UnsafeBuffer params;
    private final UnsafeBuffer grads;
    private final INDArray ownedGrads;

    private final long[] bucketStart;       // element ranges of the gradient buckets, last tensors first
    private final long[] bucketEnd;
    private final UnsafeBuffer[] bucketViews;
    private final long[][] bucketBounds;    // the shard bounds relative to each bucket
    private final CollectiveHandle[] reducing;
    private int launched;
    private int released;

    /**
     * Stage 2/3: gradient buckets that may wait for their reduce-scatter before backward waits for the oldest
     * (DeepSpeed bounds them the same way). Unbounded, reductions that fall behind backward would keep every
     * gradient resident, which is what stage 2 exists to avoid.
     */
    static final int MAX_BUCKETS_IN_FLIGHT = 2;

    private final long[] unitBounds;        // stage 3: the model's units, in buffer order
    private final UnsafeBuffer[] unitViews;
    private final long[][] unitShardBounds;
    private final CollectiveHandle[] gathering;

    private final MemoryProbe probe;

    /**
     * {@code gradGroup} carries the gradient reduce-scatters and {@code paramGroup} the parameter all-gathers
     * (the same ranks in the same order: two groups, so a prefetch never queues behind a gradient bucket);
     * {@code sums} adds the few scalars the shards must agree on.
     */
    public ZeroSharding(ProcessGroup gradGroup, ProcessGroup paramGroup, ReplicaReducer sums, int stage,
                        ParameterStore store, OptimizerSpec optimizer, long[] unitBounds, long bucketElements,
                        MemoryProbe probe) {
        if (stage < 1 || stage > 3) {
            throw new IllegalArgumentException("ZeRO stage must be 1, 2 or 3, got " + stage);
        }
        if (gradGroup.size() != paramGroup.size() || gradGroup.rank() != paramGroup.rank()) {
            throw new IllegalArgumentException("ZeRO's gradient and parameter groups must hold the same ranks");
        }
        this.gradGroup = gradGroup;
        this.paramGroup = paramGroup;
        this.sums = sums;
        this.stage = stage;
        this.dtype = store.dataType() == DataType.DOUBLE ? DType.FLOAT64 : DType.FLOAT32;
        this.width = store.dataType().width();
        List<ParamSpan> spans = store.spans();
        this.bounds = ShardPlan.bounds(spans, store.numel(), gradGroup.size(),
                owned -> optimizer.stateElements(spans, owned));
        this.shard = new Shard(bounds[gradGroup.rank()], bounds[gradGroup.rank() + 1]);
        this.params = whole(store.params());
        this.grads = whole(store.grads());
        this.ownedGrads = shard.length() == 0 ? null : slice(store.grads(), shard);
        this.probe = probe == null ? MemoryProbe.OFF : probe;

        long[][] ranges = Buckets.reverseOrder(store.tensors(), bucketElements);
        bucketStart = new long[ranges.length];
        bucketEnd = new long[ranges.length];
        bucketViews = new UnsafeBuffer[ranges.length];
        bucketBounds = new long[ranges.length][];
        for (int b = 0; b < ranges.length; b++) {
            bucketStart[b] = ranges[b][0];
            bucketEnd[b] = ranges[b][1];
            bucketViews[b] = view(grads, bucketStart[b], bucketEnd[b]);
            bucketBounds[b] = clipped(bounds, bucketStart[b], bucketEnd[b]);
        }
        reducing = new CollectiveHandle[ranges.length];

        this.unitBounds = unitBounds.clone();
        int units = unitBounds.length - 1;
        unitViews = new UnsafeBuffer[units];
        unitShardBounds = new long[units][];
        for (int u = 0; u < units; u++) {
            unitViews[u] = view(params, unitBounds[u], unitBounds[u + 1]);
            unitShardBounds[u] = clipped(bounds, unitBounds[u], unitBounds[u + 1]);
        }
        gathering = new CollectiveHandle[units];
    }

    /** The range of the flat buffers this rank's optimizer owns. */
    public Shard shard() {
        return shard;
    }

    // ------------------------------------------------------------------ gradients

    @Override
    public void zero(ParameterStore store) {
        if (stage == 1) {
            store.zeroGrads();
            return;
        }
        // Every page goes back to the OS and reads as zeros, the owned range's too, so a gradient is resident only
        // from when backward writes it until its bucket is reduced (or, owned, until the step ends). Only partial
        // pages at the edges are written.
        freeRange(grads, 0, store.numel());
    }

    @Override
    public void ready(long fromElement) {
        if (stage == 1) {
            return; // stage 1 accumulates locally and reduces once, after backward
        }
        while (launched < bucketViews.length && bucketStart[launched] >= fromElement) {
            reducing[launched] = gradGroup.reduceScatterInPlaceAsync(bucketViews[launched], bucketBounds[launched],
                    dtype, ReduceOp.SUM);
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
            gradGroup.reduceScatterInPlace(grads, bounds, dtype, ReduceOp.SUM);
            return;
        }
        ready(0);
        freeReducedBuckets(true);
        launched = 0;
        released = 0;
    }

    /** Frees the non-owned gradient pages of every bucket whose reduce-scatter is done (all of them if waiting). */
    private void freeReducedBuckets(boolean wait) {
        while (released < launched && (wait || reducing[released].isDone())) {
            freeOldestBucket();
        }
    }

    private void freeOldestBucket() {
        reducing[released].await();
        reducing[released] = null;
        probe.sample(this);
        freeOutside(grads, bucketStart[released], bucketEnd[released]);
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

    /** Stage 3: waits for {@code unit}'s gather (starting it if no prefetch did) and starts {@code next}'s. */
    @Override
    public void acquire(int unit, int next) {
        if (stage < 3) {
            return;
        }
        if (gathering[unit] == null) {
            gathering[unit] = gather(unit);
        }
        if (next >= 0 && gathering[next] == null) {
            gathering[next] = gather(next);
        }
        gathering[unit].await();
        gathering[unit] = null;
        probe.sample(this);
    }

    @Override
    public void release(int unit) {
        if (stage < 3) {
            return;
        }
        freeOutside(params, unitBounds[unit], unitBounds[unit + 1]);
    }

    @Override
    public void afterUpdate() {
        if (stage < 3) {
            paramGroup.allGatherInPlace(params, bounds, dtype);
        }
    }

    private CollectiveHandle gather(int unit) {
        return paramGroup.allGatherInPlaceAsync(unitViews[unit], unitShardBounds[unit], dtype);
    }

    // ------------------------------------------------------------------ memory

    /** Resident bytes of the parameter and gradient buffers now. */
    public long[] residentBytes() {
        return new long[] {PageMemory.residentBytes(params.addressOffset(), params.capacity()),
                PageMemory.residentBytes(grads.addressOffset(), grads.capacity())};
    }

    /**
     * Frees the whole pages of {@code [from, to)} outside the owned range and zeroes what is left of it (the
     * partial pages at the edges), so all of it reads as zeros.
     */
    private void freeOutside(UnsafeBuffer buffer, long from, long to) {
        freeRange(buffer, from, Math.min(to, shard.from()));
        freeRange(buffer, Math.max(from, shard.to()), to);
    }

    private void freeRange(UnsafeBuffer buffer, long from, long to) {
        if (to <= from) {
            return;
        }
        long start = buffer.addressOffset() + from * width;
        long end = buffer.addressOffset() + to * width;
        long pageFrom = Math.min(PageMemory.pageUp(start), end);
        long pageTo = Math.max(PageMemory.pageDown(end), pageFrom);
        PageMemory.release(pageFrom, pageTo - pageFrom);
        // Edges that share a page with memory that stays: written, not freed.
        buffer.setMemory(Math.toIntExact(start - buffer.addressOffset()), Math.toIntExact(pageFrom - start), (byte) 0);
        buffer.setMemory(Math.toIntExact(pageTo - buffer.addressOffset()), Math.toIntExact(end - pageTo), (byte) 0);
    }

    // ------------------------------------------------------------------ layout

    private static UnsafeBuffer whole(INDArray flat) {
        long bytes = flat.length() * flat.dataType().width();
        return new UnsafeBuffer(flat.data().address() + flat.offset() * flat.dataType().width(), Math.toIntExact(bytes));
    }

    private UnsafeBuffer view(UnsafeBuffer buffer, long from, long to) {
        return new UnsafeBuffer(buffer.addressOffset() + from * width, Math.toIntExact((to - from) * width));
    }

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
