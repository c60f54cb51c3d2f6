package dev.tessera.worker.checkpoint;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The native memory of a contiguous array or view, as a ByteBuffer window: no copy is made. */
final class NativeBytes {

    private NativeBytes() {
    }

    /**
     * {@code asNio()} exposes the whole underlying allocation (also for views, whose element offset is
     * {@code arr.offset()}), so the window is cut at that offset. The result shares memory with
     * {@code arr}: writing into it writes the array.
     */
    static ByteBuffer of(INDArray arr) {
        int elementSize = arr.dataType().width();
        long begin = arr.offset() * elementSize;
        long end = begin + arr.length() * elementSize;
        ByteBuffer all = arr.data().asNio();
        if (end > all.capacity()) {
            throw new IllegalStateException("array of " + arr.length() + " elements at offset " + arr.offset()
                    + " lies outside its buffer's " + all.capacity() + " bytes (buffers over 2 GiB are not supported)");
        }
        ByteBuffer window = all.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        window.limit((int) end).position((int) begin);
        return window.slice().order(ByteOrder.LITTLE_ENDIAN);
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
