package dev.tessera.worker.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Where a layer's per-token buffers come from: the activations it keeps from forward for backward, and its
 * backward's scratch. Layers ask for them once, when they are built. {@link #own()} gives every layer buffers of
 * its own. {@link #shared()} is one set for all the blocks whose activations are recomputed in backward
 * (activation checkpointing): only one such block's activations are live at a time, so the n-th buffer of a
 * given shape that each of them asks for is the same buffer.
 */
public final class Activations {

    private final boolean shared;
    private final Map<String, List<Object>> pool = new HashMap<>();
    private final Map<String, Integer> taken = new HashMap<>(); // by the layer being built: per shape

    private Activations(boolean shared) {
        this.shared = shared;
    }

    /** Every request gets a new buffer. */
    public static Activations own() {
        return new Activations(false);
    }

    /** Layers built after each {@link #nextLayer()} get the buffers the layers before them got. */
    public static Activations shared() {
        return new Activations(true);
    }

    /** The next requests are another layer's: in a shared set they start again from the first buffer. */
    public void nextLayer() {
        taken.clear();
    }

    public INDArray array(DataType dt, long... shape) {
        return (INDArray) take(dt + Arrays.toString(shape), () -> Nd4j.create(dt, shape));
    }

    public double[] doubles(int n) {
        return (double[]) take("double" + n, () -> new double[n]);
    }

    public float[] floats(int n) {
        return (float[]) take("float" + n, () -> new float[n]);
    }

    public int[] ints(int n) {
        return (int[]) take("int" + n, () -> new int[n]);
    }

    private Object take(String shape, Supplier<Object> create) {
        if (!shared) {
            return create.get();
        }
        int index = taken.merge(shape, 1, Integer::sum) - 1;
        List<Object> buffers = pool.computeIfAbsent(shape, s -> new ArrayList<>());
        if (index == buffers.size()) {
            buffers.add(create.get());
        }
        return buffers.get(index);
    }
}
