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
    private long bytes;

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
        long numel = 1;
        for (long d : shape) {
            numel = Math.multiplyExact(numel, d);
        }
        return (INDArray) take(dt + Arrays.toString(shape), numel * dt.width(), () -> Nd4j.create(dt, shape));
    }

    public double[] doubles(int n) {
        return (double[]) take("double" + n, 8L * n, () -> new double[n]);
    }

    public float[] floats(int n) {
        return (float[]) take("float" + n, 4L * n, () -> new float[n]);
    }

    public int[] ints(int n) {
        return (int[]) take("int" + n, 4L * n, () -> new int[n]);
    }

    /** The bytes of the buffers this set has created (the memory planner's activation term is checked on it). */
    public long bytes() {
        return bytes;
    }

    private Object take(String shape, long size, Supplier<Object> create) {
        if (!shared) {
            bytes += size;
            return create.get();
        }
        int index = taken.merge(shape, 1, Integer::sum) - 1;
        List<Object> buffers = pool.computeIfAbsent(shape, s -> new ArrayList<>());
        if (index == buffers.size()) {
            bytes += size;
            buffers.add(create.get());
        }
        return buffers.get(index);
    }
}
