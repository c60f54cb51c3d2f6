package dev.tessera.worker.parallel;

import dev.tessera.optimizers.OptimizerSpec;
import dev.tessera.optimizers.ParamSpan;
import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.ShardPlan;
import dev.tessera.worker.model.ParameterStore;
import java.util.List;
import java.util.function.Predicate;

/**
 * A contiguous range {@code [from, to)} of a replica's flat buffers made of whole tensors: what one ZeRO group
 * shards. Without expert parallelism that is the whole buffer; with it, the dense tensors (replicated over the
 * data-parallel group) and the held experts (replicated over the expert-data-parallel group) are two regions,
 * which the expert-parallel layout keeps apart (dense first, experts last).
 */
record FlatRegion(long from, long to, List<ParameterStore.Tensor> tensors) {

    static FlatRegion whole(ParameterStore store) {
        return new FlatRegion(0, store.numel(), store.tensors());
    }

    /** The tensors {@code keep} accepts, which must be neighbours in the buffer. */
    static FlatRegion of(ParameterStore store, Predicate<String> keep) {
        List<ParameterStore.Tensor> kept = store.tensors().stream().filter(t -> keep.test(t.name())).toList();
        if (kept.isEmpty()) {
            return new FlatRegion(0, 0, kept);
        }
        long end = kept.get(0).offset();
        for (ParameterStore.Tensor t : kept) {
            if (t.offset() != end) {
                throw new IllegalArgumentException("tensor " + t.name() + " at " + t.offset() + " does not follow the"
                        + " region's previous tensor, which ends at " + end + ": the layout interleaves the region");
            }
            end = t.end();
        }
        return new FlatRegion(kept.get(0).offset(), end, kept);
    }

    long length() {
        return to - from;
    }

    /** The optimizers' view of the region's tensors, at their offsets in the whole buffer. */
    List<ParamSpan> spans() {
        return tensors.stream().map(t -> new ParamSpan(t.name(), t.offset(), t.numel(), t.shape())).toList();
    }

    /**
     * {@link ShardPlan#bounds} for {@code ranks} ranks over this region, as offsets in the whole buffer: the plan
     * sees the region as a buffer of its own, so its cuts balance the region's parameters and state only.
     */
    long[] shardBounds(int ranks, OptimizerSpec optimizer) {
        List<ParamSpan> local = tensors.stream()
                .map(t -> new ParamSpan(t.name(), t.offset() - from, t.numel(), t.shape())).toList();
        long[] bounds = ShardPlan.bounds(local, length(), ranks, owned -> optimizer.stateElements(local, owned));
        for (int k = 0; k < bounds.length; k++) {
            bounds[k] += from;
        }
        return bounds;
    }

    boolean isWhole(ParameterStore store) {
        return from == 0 && to == store.numel();
    }

    Shard shard() {
        return new Shard(from, to);
    }
}
