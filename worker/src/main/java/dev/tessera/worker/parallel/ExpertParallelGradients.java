package dev.tessera.worker.parallel;

import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.ReduceOp;
import dev.tessera.optimizers.GradNorm;
import dev.tessera.worker.model.ExpertShard;
import dev.tessera.worker.model.GradientSync;
import dev.tessera.worker.model.ParameterStore;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
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
    private final ExpertParallelUnits units;
    private final INDArray denseGrads;
    private final INDArray expertGrads;
    private final UnsafeBuffer squares = new UnsafeBuffer(
            ByteBuffer.allocateDirect(Double.BYTES).order(ByteOrder.nativeOrder()));

    ExpertParallelGradients(GradientSync dense, GradientSync experts, ProcessGroup expertGroup, ParameterStore params,
                            ExpertParallelUnits units) {
        this.dense = dense;
        this.experts = experts;
        this.expertGroup = expertGroup;
        this.units = units;
        this.denseGrads = slice(params, FlatRegion.of(params, name -> !ExpertShard.isExpertTensor(name)));
        this.expertGrads = slice(params, FlatRegion.of(params, ExpertShard::isExpertTensor));
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
        experts.ready(units.expertsFinalFrom(fromElement));
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
