package dev.tessera.optimizers.kernel;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.agrona.concurrent.UnsafeBuffer;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The one place Tessera computes where an ND4J array lives in native memory. Addresses and offsets are 64-bit,
 * so a flat parameter, gradient or optimizer buffer may be as large as the host's memory; every view handed out
 * (a ByteBuffer for the Vector API kernels, an Agrona buffer for the collectives, a pointer for BLAS) starts at
 * its own first element.
 *
 * <p>A ByteBuffer's and an Agrona buffer's capacity is an int, so one view spans at most {@link #MAX_VIEW_BYTES}.
 * Kernels take a view per tensor, made once when the model is built; planning refuses a tensor larger than a
 * view. Work over a whole flat buffer (optimizer steps, the gradient norm, collectives on it, checkpoint I/O)
 * walks it in {@link #windows windows} of {@link #WINDOW_BYTES}, each with its own view.
 *
 * <p>A view does not keep its array alive: the caller holds the array for as long as it uses the view.
 */
public final class NativeMemory {

    /** The largest view, in bytes: the JDK's ByteBuffer and Agrona's buffers index with an int. */
    public static final long MAX_VIEW_BYTES = Integer.MAX_VALUE;

    /**
     * How far one step of a walk over a whole buffer reaches: 1 GiB, a power of two, so each window starts on
     * a page, a vector and a fixed-size chunk boundary, and a buffer under 1 GiB is walked in one window.
     */
    public static final long WINDOW_BYTES = 1L << 30;

    private NativeMemory() {
    }

    /** The address of {@code a}'s first element (its offset into the shared data buffer applied). */
    public static long address(INDArray a) {
        Pointer p = a.data().pointer();
        return p.address() + p.position() * p.sizeof() + a.offset() * a.dataType().width();
    }

    /** The address of element {@code element} of a contiguous array {@code a}. */
    public static long address(INDArray a, long element) {
        return address(a) + element * a.dataType().width();
    }

    /** The bytes of {@code a}'s elements, as laid out densely. */
    public static long byteSize(INDArray a) {
        return a.length() * a.dataType().width();
    }

    /**
     * A native-order ByteBuffer over the elements of a dense C-order array: byte {@code i * width} is element
     * {@code i}. Writing into it writes the array.
     *
     * @throws IllegalArgumentException if the array is larger than one view can be
     */
    public static ByteBuffer bytes(INDArray a) {
        return bytes(a, 0, a.length());
    }

    /** A native-order ByteBuffer over elements {@code [from, from + length)} of a dense C-order array. */
    public static ByteBuffer bytes(INDArray a, long from, long length) {
        long size = checkedView(a, from, length);
        if (size == 0) {
            return ByteBuffer.allocateDirect(0).order(ByteOrder.nativeOrder()); // JavaCPP would make it one byte long
        }
        return new At(address(a, from), size).asByteBuffer();
    }

    /** An Agrona buffer over elements {@code [from, to)} of a dense C-order array, for the collectives. */
    public static UnsafeBuffer unsafe(INDArray a, long from, long to) {
        long size = checkedView(a, from, to - from);
        return new UnsafeBuffer(address(a, from), (int) size);
    }

    /** A BLAS operand: a float pointer at {@code a}'s first element (a matrix whose rows may be spaced out). */
    public static FloatPointer floats(INDArray a) {
        return new FloatPointer(new At(address(a), 0));
    }

    /** A BLAS operand: a double pointer at {@code a}'s first element. */
    public static DoublePointer doubles(INDArray a) {
        return new DoublePointer(new At(address(a), 0));
    }

    /**
     * The element bounds {@code 0 = b[0] < b[1] < ... < b[k] = elements} of the windows that cover a buffer of
     * {@code elements} elements of {@code width} bytes, each at most {@link #WINDOW_BYTES} ({@code {0}} when empty).
     */
    public static long[] windows(long elements, int width) {
        long per = WINDOW_BYTES / width;
        int count = Math.toIntExact((elements + per - 1) / per);
        long[] bounds = new long[count + 1];
        for (int w = 1; w <= count; w++) {
            bounds[w] = Math.min(elements, w * per);
        }
        return bounds;
    }

    private static long checkedView(INDArray a, long from, long length) {
        long size = length * a.dataType().width();
        if (from < 0 || length < 0 || from + length > a.length()) {
            throw new IndexOutOfBoundsException("elements [" + from + ", " + (from + length) + ") of an array of "
                    + a.length());
        }
        if (size > MAX_VIEW_BYTES) {
            throw new IllegalArgumentException("a view of " + size + " bytes is over the " + MAX_VIEW_BYTES
                    + " bytes one ByteBuffer can span (a JDK limit): planning refuses such a tensor, and whole"
                    + " buffers are walked in windows");
        }
        return size;
    }

    /**
     * Raw bytes at an address that JavaCPP did not allocate: how a direct ByteBuffer or a typed pointer is made
     * over such memory without a copy. It owns nothing and frees nothing.
     */
    private static final class At extends Pointer {
        At(long address, long bytes) {
            this.address = address;
            this.limit = bytes;
            this.capacity = bytes;
        }

        @Override
        public int sizeof() {
            return 1; // JavaCPP would otherwise look the size up as a native struct's
        }
    }
}
