package dev.tessera.worker.parallel;

import dev.tessera.worker.model.FlatMemory;
import java.lang.ref.Cleaner;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.indexer.DoubleIndexer;
import org.bytedeco.javacpp.indexer.FloatIndexer;
import org.bytedeco.javacpp.indexer.Indexer;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Flat buffers in reserved pages ({@link PageMemory#reserve}): zeros that take no physical memory until written.
 * ZeRO's sharded buffers live here (stage 3's parameters, stage 2 and 3's gradients), so a rank's resident set
 * holds only what it writes: its shard and what is gathered or reduced in flight, never a whole replica. ND4J's
 * own allocation sets every byte to zero, which would make all of them resident at once. The pages are unmapped
 * when the buffer (and with it every view of it) is unreachable.
 */
public final class ReservedFlatMemory implements FlatMemory {

    public static final ReservedFlatMemory INSTANCE = new ReservedFlatMemory();

    private static final Cleaner UNMAP = Cleaner.create();

    private ReservedFlatMemory() {
    }

    @Override
    public INDArray allocate(DataType dtype, long numel) {
        long bytes = Math.multiplyExact(numel, (long) dtype.width());
        long address = PageMemory.reserve(bytes);
        Pointer pointer;
        Indexer indexer;
        if (dtype == DataType.FLOAT) {
            FloatPointer p = new FloatPointer(new At(address, numel));
            pointer = p;
            indexer = FloatIndexer.create(p);
        } else if (dtype == DataType.DOUBLE) {
            DoublePointer p = new DoublePointer(new At(address, numel));
            pointer = p;
            indexer = DoubleIndexer.create(p);
        } else {
            PageMemory.unreserve(address, bytes);
            throw new IllegalArgumentException("flat buffers are float32 or float64, not " + dtype);
        }
        DataBuffer buffer = Nd4j.createBuffer(pointer, dtype, numel, indexer);
        UNMAP.register(buffer, () -> PageMemory.unreserve(address, bytes));
        return Nd4j.create(buffer, new long[] {numel}, new long[] {1}, 0, 'c', dtype);
    }

    /** {@code elements} elements at an address JavaCPP did not allocate; the typed pointer copies these fields. */
    private static final class At extends Pointer {
        At(long address, long elements) {
            this.address = address;
            this.limit = elements;
            this.capacity = elements;
        }
    }
}
