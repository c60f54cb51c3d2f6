package dev.tessera.optimizers;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Tensors of the given shapes laid out back to back in flat param/grad buffers, as ParameterStore does. */
final class FlatModel {

    final List<ParamSpan> spans = new ArrayList<>();
    final List<ReferenceTensor> tensors = new ArrayList<>();
    final INDArray params;
    final INDArray grads;
    final int numel;

    FlatModel(DataType dtype, long[]... shapes) {
        int offset = 0;
        for (int k = 0; k < shapes.length; k++) {
            ReferenceTensor t = new ReferenceTensor(shapes[k]);
            tensors.add(t);
            spans.add(new ParamSpan("t" + k, offset, t.numel(), shapes[k]));
            offset += t.numel();
        }
        numel = offset;
        params = Nd4j.zeros(dtype, numel);
        grads = Nd4j.zeros(dtype, numel);
    }

    static double[] random(SplittableRandom rnd, int n, double bound) {
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = rnd.nextDouble(-bound, bound);
        }
        return x;
    }

    void setParams(double[] flat) {
        params.assign(Nd4j.createFromArray(flat).castTo(params.dataType()));
    }

    void setGrads(double[] flat) {
        grads.assign(Nd4j.createFromArray(flat).castTo(grads.dataType()));
    }

    double[] params() {
        return params.castTo(DataType.DOUBLE).toDoubleVector();
    }

    /** The flat values cut into the reference's per-tensor {@code [batch][rows][cols]} arrays. */
    double[][][][] split(double[] flat) {
        double[][][][] out = new double[tensors.size()][][][];
        for (int k = 0; k < tensors.size(); k++) {
            out[k] = tensors.get(k).unflatten(flat, (int) spans.get(k).offset());
        }
        return out;
    }

    double[] join(double[][][][] x) {
        double[] flat = new double[numel];
        int at = 0;
        for (double[][][] t : x) {
            for (double[][] matrix : t) {
                for (double[] row : matrix) {
                    for (double e : row) {
                        flat[at++] = e;
                    }
                }
            }
        }
        return flat;
    }
}
