package dev.tessera.worker.model;

import dev.tessera.optimizers.ParamSpan;
import dev.tessera.optimizers.kernel.NativeMemory;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * All parameters of a replica in one contiguous buffer and their gradients in a second buffer of the
 * same layout (as llm.c does). Every tensor is a C-order view at a fixed offset, so buckets, shards,
 * collective payloads and checkpoint writes are slices of {@link #params()} / {@link #grads()}.
 * Tensors are laid out in registration order, which is model order (embedding first, lm_head last).
 */
public final class ParameterStore {

    /** One named tensor of the layout: Hugging Face name, PyTorch shape ([out, in] for linear weights). */
    public record Tensor(String name, long[] shape, long offset, long numel) {
        public long end() {
            return offset + numel;
        }
    }

    /**
     * The largest tensor, in bytes, that the kernels can address: each reads a tensor through its own
     * {@link java.nio.ByteBuffer} view, whose index is an int ({@link NativeMemory}). The flat buffers have no
     * such limit; what walks them whole goes in windows.
     */
    public static final long MAX_TENSOR_BYTES = NativeMemory.MAX_VIEW_BYTES;

    /** Where layers declare their tensors: the store's {@link Builder}, or planning that only counts them. */
    public interface Layout {
        Layout add(String name, long... shape);
    }

    private final DataType dataType;
    private final List<Tensor> tensors;
    private final Map<String, Tensor> byName;
    private final INDArray params;
    private final INDArray grads;
    private final Map<String, INDArray> paramViews = new LinkedHashMap<>();
    private final Map<String, INDArray> gradViews = new LinkedHashMap<>();
    private final Mem[] gradWindows; // the gradient buffer in windows, for zeroing

    private ParameterStore(DataType dataType, List<Tensor> tensors, long numel, FlatMemory parameterMemory,
                           FlatMemory gradientMemory) {
        this.dataType = dataType;
        this.tensors = Collections.unmodifiableList(tensors);
        this.byName = new LinkedHashMap<>();
        for (Tensor t : tensors) {
            byName.put(t.name(), t);
        }
        for (Tensor t : tensors) {
            long bytes = Math.multiplyExact(t.numel(), (long) dataType.width());
            if (bytes > MAX_TENSOR_BYTES) {
                throw new IllegalArgumentException("tensor " + t.name() + " takes " + bytes + " bytes, over the "
                        + MAX_TENSOR_BYTES + " one tensor may hold (planning refuses such a model)");
            }
        }
        this.params = parameterMemory.allocate(dataType, numel);
        this.grads = gradientMemory.allocate(dataType, numel);
        for (Tensor t : tensors) {
            paramViews.put(t.name(), view(params, t));
            gradViews.put(t.name(), view(grads, t));
        }
        long[] windows = NativeMemory.windows(numel, dataType.width());
        this.gradWindows = new Mem[windows.length - 1];
        for (int w = 0; w < gradWindows.length; w++) {
            gradWindows[w] = new Mem(Mem.view(grads, windows[w], windows[w + 1] - windows[w]));
        }
    }

    /** A C-order view of {@code t} inside {@code flat} (which must have this store's layout). */
    public static INDArray view(INDArray flat, Tensor t) {
        long[] stride = new long[t.shape().length];
        long s = 1;
        for (int i = stride.length - 1; i >= 0; i--) {
            stride[i] = s;
            s *= t.shape()[i];
        }
        return Nd4j.create(flat.data(), t.shape(), stride, flat.offset() + t.offset(), 'c', flat.dataType());
    }

    public static Builder builder() {
        return new Builder();
    }

    public DataType dataType() {
        return dataType;
    }

    public List<Tensor> tensors() {
        return tensors;
    }

    /** The optimizers' view of the tensors: one span per tensor, in buffer order. */
    public List<ParamSpan> spans() {
        return tensors.stream().map(t -> new ParamSpan(t.name(), t.offset(), t.numel(), t.shape())).toList();
    }

    public Tensor tensor(String name) {
        Tensor t = byName.get(name);
        if (t == null) {
            throw new IllegalArgumentException("no parameter named " + name);
        }
        return t;
    }

    public boolean contains(String name) {
        return byName.containsKey(name);
    }

    /** Flat parameter buffer, length {@link #numel()}. */
    public INDArray params() {
        return params;
    }

    /** Flat gradient buffer, same layout as {@link #params()}. */
    public INDArray grads() {
        return grads;
    }

    public INDArray param(String name) {
        tensor(name);
        return paramViews.get(name);
    }

    public INDArray grad(String name) {
        tensor(name);
        return gradViews.get(name);
    }

    /**
     * Tensors that are adjacent in the layout and of equal row width, as one [sum of rows, cols] view of
     * the params (index 0) and grads (index 1): e.g. q|k|v for a single fused projection gemm.
     */
    public INDArray[] stacked(String... names) {
        Tensor first = tensor(names[0]);
        long cols = first.shape()[first.shape().length - 1];
        long rows = 0;
        long end = first.offset();
        for (String name : names) {
            Tensor t = tensor(name);
            if (t.shape().length != 2 || t.shape()[1] != cols || t.offset() != end) {
                throw new IllegalArgumentException("cannot stack " + String.join(", ", names)
                        + ": not adjacent matrices of equal width");
            }
            rows += t.shape()[0];
            end = t.end();
        }
        Tensor all = new Tensor(String.join("|", names), new long[] {rows, cols}, first.offset(), rows * cols);
        return new INDArray[] {view(params, all), view(grads, all)};
    }

    public long numel() {
        return params.length();
    }

    /** A Java fill over the kernel threads: ND4J's assign(0) took ~5 ms on the dense preset's 13 MB. */
    public void zeroGrads() {
        for (Mem window : gradWindows) {
            Mem.zero(window, (int) window.arr.length());
        }
    }

    /** Collects tensors in model order, then allocates both buffers once. */
    public static final class Builder implements Layout {
        private final List<Tensor> tensors = new ArrayList<>();
        private final Map<String, Tensor> seen = new LinkedHashMap<>();
        private long offset;

        public Builder add(String name, long... shape) {
            if (seen.containsKey(name)) {
                throw new IllegalArgumentException("duplicate parameter " + name);
            }
            long n = 1;
            for (long d : shape) {
                n = Math.multiplyExact(n, d);
            }
            Tensor t = new Tensor(name, shape.clone(), offset, n);
            offset = Math.addExact(offset, n);
            tensors.add(t);
            seen.put(name, t);
            return this;
        }

        /** Tensors added so far, in buffer order. */
        public List<Tensor> tensors() {
            return List.copyOf(tensors);
        }

        public ParameterStore build(DataType dataType) {
            return build(dataType, FlatMemory.ND4J);
        }

        /** With the gradient buffer in {@code gradientMemory} (the parameters stay in ND4J's). */
        public ParameterStore build(DataType dataType, FlatMemory gradientMemory) {
            return build(dataType, FlatMemory.ND4J, gradientMemory);
        }

        /** With the parameter buffer in {@code parameterMemory} and the gradient buffer in {@code gradientMemory}. */
        public ParameterStore build(DataType dataType, FlatMemory parameterMemory, FlatMemory gradientMemory) {
            return new ParameterStore(dataType, new ArrayList<>(tensors), offset, parameterMemory, gradientMemory);
        }
    }
}
