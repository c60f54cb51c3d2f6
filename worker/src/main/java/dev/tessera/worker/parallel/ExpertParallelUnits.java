package dev.tessera.worker.parallel;

import dev.tessera.worker.model.Block;
import dev.tessera.worker.model.ExpertShard;
import dev.tessera.worker.model.ParameterStore;
import java.util.Arrays;

/**
 * The model's units (embedding, each block, head: {@code Transformer.unitBounds}) in the expert-parallel layout,
 * where the held experts lie after the head: each unit is a range of the dense region and a range of the expert
 * region (empty for the embedding, the head and dense blocks). Both sets of bounds are nondecreasing, so after a
 * unit's backward the gradients from its start to its region's end are final in both regions, and ZeRO-3 gathers a
 * unit as one range of each.
 */
public final class ExpertParallelUnits {

    private final long[] dense;   // units + 1 bounds, ending where the dense region ends
    private final long[] experts; // units + 1 bounds, from the expert region's start to numel

    private ExpertParallelUnits(long[] dense, long[] experts) {
        this.dense = dense;
        this.experts = experts;
    }

    /** {@code unitBounds}: the model's, whose block ranges hold only dense tensors and whose last runs to numel. */
    public static ExpertParallelUnits of(ParameterStore params, long[] unitBounds) {
        int units = unitBounds.length - 1;
        FlatRegion region = FlatRegion.of(params, ExpertShard::isExpertTensor);
        long[] dense = unitBounds.clone();
        dense[units] = region.length() == 0 ? params.numel() : region.from();
        long[] experts = new long[units + 1];
        long start = params.numel();
        experts[units] = start;
        experts[units - 1] = start; // the head holds no experts
        for (int u = units - 2; u >= 1; u--) {
            String block = Block.prefix(u - 1) + ".";
            for (ParameterStore.Tensor t : region.tensors()) {
                if (t.name().startsWith(block)) {
                    start = Math.min(start, t.offset());
                }
            }
            experts[u] = start;
        }
        experts[0] = start; // the embedding holds none either
        return new ExpertParallelUnits(dense, experts);
    }

    public int units() {
        return dense.length - 1;
    }

    /** Unit bounds within the dense region. */
    public long[] denseBounds() {
        return dense.clone();
    }

    /** Unit bounds within the expert region. */
    public long[] expertBounds() {
        return experts.clone();
    }

    /** Whether tensor {@code t} belongs to unit {@code unit}, in either region. */
    public boolean holds(int unit, ParameterStore.Tensor t) {
        long[] bounds = ExpertShard.isExpertTensor(t.name()) ? experts : dense;
        return t.offset() >= bounds[unit] && t.offset() < bounds[unit + 1];
    }

    /**
     * Where the expert region's final gradients begin once backward has reported the dense region final from
     * {@code denseFrom} (a unit's start): that unit's experts and every later unit's.
     */
    long expertsFinalFrom(long denseFrom) {
        int unit = Arrays.binarySearch(dense, 0, dense.length - 1, denseFrom);
        // Inside a unit (not reported by the model): only the later units' experts are surely final.
        int at = unit >= 0 ? unit : -unit - 1;
        return experts[Math.min(at, experts.length - 1)];
    }
}
