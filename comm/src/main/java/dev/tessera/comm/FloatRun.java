package dev.tessera.comm;

import org.agrona.DirectBuffer;
import org.agrona.UnsafeApi;

/**
 * A run of native-order float32 elements in a {@link DirectBuffer} (direct, heap or a raw address), read and written
 * without a bounds check per element: the run is checked once against the buffer when it is located. The codecs'
 * loops and CO2's round end touch every parameter several times per round, and Agrona's per-call check costs more
 * than the arithmetic there (docs/PERFORMANCE.md, "CO2 at tau 3 meets issue 19's four lines").
 */
public final class FloatRun {

    private FloatRun() {
    }

    /** The address of element {@code index} of {@code buffer}, once {@code [index, index + n)} is checked to lie in it. */
    public static long locate(DirectBuffer buffer, int index, int n) {
        if (index < 0 || n < 0 || 4L * index + 4L * n > buffer.capacity()) {
            throw new IndexOutOfBoundsException("floats [" + index + ", " + ((long) index + n) + ") lie outside a"
                    + " buffer of " + buffer.capacity() + " bytes");
        }
        return buffer.addressOffset() + 4L * index;
    }

    /** Element {@code i} of the run at {@code address} in {@code buffer} ({@link DirectBuffer#byteArray()} or null). */
    public static float get(Object base, long address, int i) {
        return UnsafeApi.getFloat(base, address + 4L * i);
    }

    public static void put(Object base, long address, int i, float value) {
        UnsafeApi.putFloat(base, address + 4L * i, value);
    }
}
