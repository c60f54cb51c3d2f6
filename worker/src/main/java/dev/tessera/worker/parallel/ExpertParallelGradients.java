package dev.tessera.worker.parallel;

import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.ReduceOp;
import dev.tessera.optimizers.GradNorm;
import dev.tessera.worker.model.Block;
import dev.tessera.worker.model.ExpertShard;
import dev.tessera.worker.model.GradientSync;
import dev.tessera.worker.model.ParameterStore;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.agrona.concurrent.UnsafeBuffer;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Gradient reduction under expert parallelism, over the expert-parallel layout (the dense tensors first, the held
 * experts after the head): the dense region is reduced over the data-parallel group (every replica holds it), the
 * expert region over the expert-data-parallel group (the ranks that hold the same experts; nothing to reduce when
 * each expert lives on one rank). Each is an all-reduce, or a {@link ZeroSharding} of its region. An expert's
 * gradient already holds the whole expert group's tokens, which reached it by all-to-all.
 *
 * <p>Backward reports final gradients by the dense offsets of the model's units ({@link GradientSync#ready}); the
 * experts of a block lie elsewhere, so each report is passed on to the expert region as the start of the experts
 * of that unit and every later one.
 *
 * <p>The global norm counts each expert once. A region reduced whole is the same on every rank of its group: the
 * dense part is read locally, the held experts' squares are summed over the expert group, which holds each expert
 * exactly once. A sharded region's owned squares are summed over every rank (its {@link ZeroSharding}'s sums),
 * where each element is owned exactly once.
 */
final class ExpertParallelGradients implements GradientSync {

    private final GradientSync dense;
    private final GradientSync experts;
    private final ProcessGroup expertGroup;
    private final FlatRegion denseRegion;
    private final FlatRegion expertRegion;
    private final long[] unitStarts;   // the dense offset each unit's backward reports
    private final long[] expertStarts; // per unit: where the experts of it and of every later unit begin
    private final INDArray denseGrads;
    private final INDArray expertGrads;
    private final UnsafeBuffer squares = new UnsafeBuffer(
            ByteBuffer.allocateDirect(Double.BYTES).order(ByteOrder.nativeOrder()));

    /** {@code unitBounds}: the model's units ({@code Transformer.unitBounds}), in the expert-parallel layout. */
    ExpertParallelGradients(GradientSync dense, GradientSync experts, ProcessGroup expertGroup, ParameterStore params,
                            long[] unitBounds) {
        this.dense = dense;
        this.experts = experts;
        this.expertGroup = expertGroup;
        this.denseRegion = FlatRegion.of(params, name -> !ExpertShard.isExpertTensor(name));
        this.expertRegion = FlatRegion.of(params, ExpertShard::isExpertTensor);
        this.unitStarts = Arrays.copyOf(unitBounds, unitBounds.length - 1);
        this.expertStarts = expertStarts(params, unitStarts.length);
        this.denseGrads = slice(params, denseRegion);
        this.expertGrads = slice(params, expertRegion);
    }

    /**
     * Per unit (embedding, blocks, head), the first element of the experts of that unit's block and of every later
     * one: what is final once the unit's backward ran. {@code numel} after the last MoE block.
     */
    static long[] expertStarts(ParameterStore params, int units) {
        long[] starts = new long[units];
        long start = params.numel();
        starts[units - 1] = start; // the head holds no experts
        for (int u = units - 2; u >= 0; u--) {
            if (u >= 1) {
                String block = Block.prefix(u - 1) + ".";
                for (ParameterStore.Tensor t : params.tensors()) {
                    if (t.name().startsWith(block) && ExpertShard.isExpertTensor(t.name())) {
                        start = Math.min(start, t.offset());
                    }
                }
            }
            starts[u] = start;
        }
        return starts;
    }

    private static INDArray slice(ParameterStore params, FlatRegion region) {
        return region.length() == 0 ? null : ParameterStore.view(params.grads(), new ParameterStore.Tensor("region",
                new long[] {region.length()}, region.from(), region.length()));
    }

    @Override
    public void zero(ParameterStore store) {
        if (!(dense instanceof ZeroSharding) && !(experts instanceof ZeroSharding)) {
            store.zeroGrads();
            return;
        }
        dense.zero(store);
        if (experts instanceof ZeroSharding) {
            experts.zero(store);
        } else if (expertGrads != null) {
            expertGrads.assign(0);
        }
    }

    @Override
    public void ready(long fromElement) {
        dense.ready(fromElement);
        int unit = Arrays.binarySearch(unitStarts, fromElement);
        // Inside a unit (not reported by the model): only the later units' experts are surely final.
        int at = unit >= 0 ? unit : -unit - 1;
        experts.ready(at < expertStarts.length ? expertStarts[at] : expertRegion.to());
    }

    @Override
    public void finish() {
        dense.finish();
        experts.finish();
    }

    @Override
    public double sumOfSquares(INDArray grads) {
        double sum = dense instanceof ZeroSharding ? dense.sumOfSquares(grads) : GradNorm.sumOfSquares(denseGrads);
        if (experts instanceof ZeroSharding) {
            return sum + experts.sumOfSquares(grads);
        }
        squares.putDouble(0, expertGrads == null ? 0.0 : GradNorm.sumOfSquares(expertGrads));
        expertGroup.allReduce(squares, DType.FLOAT64, ReduceOp.SUM);
        return sum + squares.getDouble(0);
    }
}
