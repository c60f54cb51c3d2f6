package dev.tessera.worker.checkpoint;

import dev.tessera.optimizers.kernel.NativeMemory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The native memory of a contiguous array or view, as ByteBuffer windows: no copy is made. */
final class NativeBytes {

    private NativeBytes() {
    }

    /**
     * The array's bytes in order, cut into {@link NativeMemory#windows windows} of at most 1 GiB (one ByteBuffer
     * cannot span more than 2 GiB, a tensor or optimizer state in a checkpoint may). They share memory with
     * {@code arr}: reading into them writes the array.
     */
    static ByteBuffer[] of(INDArray arr) {
        return of(arr, 0, arr.length());
    }

    /** As {@link #of(INDArray)} for elements {@code [from, from + count)} of a contiguous array. */
    static ByteBuffer[] of(INDArray arr, long from, long count) {
        long[] cuts = NativeMemory.windows(count, arr.dataType().width());
        ByteBuffer[] windows = new ByteBuffer[cuts.length - 1];
        for (int w = 0; w < windows.length; w++) {
            windows[w] = NativeMemory.bytes(arr, from + cuts[w], cuts[w + 1] - cuts[w]).order(ByteOrder.LITTLE_ENDIAN);
        }
        return windows;
    }

    /** True when the elements are laid out densely in C order from {@code arr.offset()}. */
    static boolean isContiguous(INDArray arr) {
        long[] shape = arr.shape();
        long[] stride = arr.stride();
        long expected = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            // A dimension of size 1 is never stepped over, so its stride does not matter.
            if (shape[i] != 1 && stride[i] != expected) {
                return false;
            }
            expected *= shape[i];
        }
        return true;
    }
}
