package dev.tessera.worker.parallel;

import dev.tessera.comm.DType;
import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.ReduceOp;
import dev.tessera.optimizers.GradNorm;
import dev.tessera.worker.model.GradientSync;
import dev.tessera.worker.model.ParameterStore;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;
import org.agrona.concurrent.UnsafeBuffer;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Gradient reduction under expert parallelism: the dense tensors are summed over the data-parallel group (every
 * replica holds them), each held expert's over the expert-data-parallel group (the ranks that hold the same
 * experts; none when each expert lives on one rank). An expert's gradient already holds the whole expert group's
 * tokens, which reached it by all-to-all. The global norm counts each expert once: the dense part is the same on
 * every rank after the reduction, and the experts' squares are summed over the expert group, which holds each
 * expert exactly once.
 */
final class ExpertParallelGradients implements GradientSync {

    private final GradientSync dense;
    private final GradientSync experts;
    private final ProcessGroup expertGroup;
    private final INDArray[] denseRuns;   // the dense tensors, as runs of neighbours in the flat buffer
    private final INDArray[] expertRuns;  // the held experts' tensors, likewise
    private final UnsafeBuffer squares = new UnsafeBuffer(
            ByteBuffer.allocateDirect(Double.BYTES).order(ByteOrder.nativeOrder()));

    ExpertParallelGradients(GradientSync dense, GradientSync experts, ProcessGroup expertGroup, ParameterStore params,
                            Predicate<String> isExpert) {
        this.dense = dense;
        this.experts = experts;
        this.expertGroup = expertGroup;
        this.denseRuns = runs(params, isExpert.negate());
        this.expertRuns = runs(params, isExpert);
    }

    /** The tensors {@code keep} accepts, in buffer order, with neighbours merged. */
    static List<ParameterStore.Tensor> select(ParameterStore params, Predicate<String> keep) {
        return params.tensors().stream().filter(t -> keep.test(t.name())).toList();
    }

    private static INDArray[] runs(ParameterStore params, Predicate<String> keep) {
        List<INDArray> runs = new ArrayList<>();
        long start = -1;
        long end = -1;
        for (ParameterStore.Tensor t : select(params, keep)) {
            if (t.offset() != end) {
                if (start >= 0) {
                    runs.add(slice(params, start, end));
                }
                start = t.offset();
            }
            end = t.end();
        }
        if (start >= 0) {
            runs.add(slice(params, start, end));
        }
        return runs.toArray(new INDArray[0]);
    }

    private static INDArray slice(ParameterStore params, long from, long to) {
        return ParameterStore.view(params.grads(), new ParameterStore.Tensor("run", new long[] {to - from}, from,
                to - from));
    }

    @Override
    public void ready(long fromElement) {
        dense.ready(fromElement);
        experts.ready(fromElement);
    }

    @Override
    public void finish() {
        dense.finish();
        experts.finish();
    }

    @Override
    public double sumOfSquares(INDArray grads) {
        double expert = 0;
        for (INDArray run : expertRuns) {
            expert += GradNorm.sumOfSquares(run);
        }
        squares.putDouble(0, expert);
        expertGroup.allReduce(squares, DType.FLOAT64, ReduceOp.SUM);
        double sum = 0;
        for (INDArray run : denseRuns) {
            sum += GradNorm.sumOfSquares(run);
        }
        return sum + squares.getDouble(0);
    }
}
