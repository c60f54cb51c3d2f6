package dev.tessera.optimizers.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

class NativeMemoryTest {

    @Test
    void viewsOfAnOffsetArrayStartAtItsFirstElement() {
        INDArray whole = Nd4j.createFromArray(0f, 1f, 2f, 3f, 4f, 5f, 6f, 7f);
        INDArray view = whole.get(NDArrayIndex.interval(3, 7)); // 3, 4, 5, 6
        ByteBuffer bytes = NativeMemory.bytes(view);
        assertEquals(16, bytes.capacity());
        assertEquals(3f, bytes.getFloat(0));
        assertEquals(6f, bytes.getFloat(12));
        assertEquals(5f, NativeMemory.bytes(view, 2, 1).getFloat(0));
        UnsafeBuffer agrona = NativeMemory.unsafe(view, 1, 3);
        assertEquals(8, agrona.capacity());
        agrona.putFloat(4, 50f); // writes the array: element 2 of the view, 5 of the whole
        assertEquals(50f, whole.getFloat(5L));
        assertEquals(NativeMemory.address(whole, 3), NativeMemory.address(view));
        assertEquals(0, NativeMemory.bytes(view, 4, 0).capacity());
        assertThrows(IndexOutOfBoundsException.class, () -> NativeMemory.bytes(view, 2, 3));
    }

    @Test
    void windowsCoverABufferInWholeGibibytesOfElements() {
        long perFloat = NativeMemory.WINDOW_BYTES / 4;
        assertArrayEquals(new long[] {0}, NativeMemory.windows(0, 4));
        assertArrayEquals(new long[] {0, 10}, NativeMemory.windows(10, 4));
        assertArrayEquals(new long[] {0, perFloat}, NativeMemory.windows(perFloat, 4));
        assertArrayEquals(new long[] {0, perFloat, 2 * perFloat, 2 * perFloat + 1},
                NativeMemory.windows(2 * perFloat + 1, 4));
        assertArrayEquals(new long[] {0, perFloat / 2, perFloat}, NativeMemory.windows(perFloat, 8));
    }

    @Test
    void aLongRangeIsCutIntoTheSamePartsAsAnIntOne() {
        AtomicLong covered = new AtomicLong();
        long n = 3L << 31;
        KernelThreads.forLongRange(n, (part, from, to) -> {
            assertEquals(n * part / Math.min(KernelThreads.THREADS, n), from);
            covered.addAndGet(to - from);
        });
        assertEquals(n, covered.get());
    }
}
