package dev.tessera.comm.compress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.management.ManagementFactory;
import java.util.Arrays;
import org.agrona.concurrent.UnsafeBuffer;

/** What the codec tests share: buffers of floats, one encoding as bytes, and the refusal and allocation checks. */
final class CodecAssertions {

    private CodecAssertions() {
    }

    /** Allocation after warm-up: the JIT removes the escape-analysed allocations of the interpreter's first runs. */
    static void assertAllocatesNothing(Runnable call) {
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long id = Thread.currentThread().getId();
        long last = -1;
        for (int it = 0; it < 200; it++) {
            long before = threads.getThreadAllocatedBytes(id);
            call.run();
            last = threads.getThreadAllocatedBytes(id) - before;
            if (last == 0) {
                return;
            }
        }
        fail("a call still allocated " + last + " bytes after 200 calls");
    }

    static byte[] encode(Encoder codec, float[] x, long seed) {
        UnsafeBuffer src = buffer(x);
        UnsafeBuffer out = new UnsafeBuffer(new byte[codec.maxEncodedBytes(x.length)]);
        int length = codec.encode(src, 0, x.length, out, 0, seed);
        return Arrays.copyOf(out.byteArray(), length);
    }

    static UnsafeBuffer buffer(float[] x) {
        UnsafeBuffer b = new UnsafeBuffer(new byte[4 * x.length]);
        for (int i = 0; i < x.length; i++) {
            b.putFloat(4 * i, x[i]);
        }
        return b;
    }

    static float[] floats(UnsafeBuffer b, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = b.getFloat(4 * i);
        }
        return x;
    }

    /** Decoding {@code bytes} fails with IllegalArgumentException and leaves the destination as it was. */
    static void assertRefused(Encoder codec, byte[] bytes, int n) {
        UnsafeBuffer dst = new UnsafeBuffer(new byte[4 * n]);
        for (int i = 0; i < n; i++) {
            dst.putFloat(4 * i, 7f);
        }
        UnsafeBuffer in = new UnsafeBuffer(new byte[bytes.length + 16]);
        in.putBytes(0, bytes);
        assertThrows(IllegalArgumentException.class, () -> codec.decodeAdd(in, 0, bytes.length, 1f, dst, 0, n));
        for (int i = 0; i < n; i++) {
            assertEquals(7f, dst.getFloat(4 * i), "element " + i + " was touched");
        }
    }
}
