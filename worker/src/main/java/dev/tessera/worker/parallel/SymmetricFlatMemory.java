package dev.tessera.worker.parallel;

import dev.tessera.comm.ProcessGroup;
import dev.tessera.comm.SymmetricMemory;
import dev.tessera.worker.model.FlatMemory;
import java.nio.ByteBuffer;
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
 * Flat buffers in the group's {@link SymmetricMemory}: an ND4J array over the mapped memory (no copy), so the
 * group's collectives on slices of it read the other members' copies directly. Allocation is collective:
 * every member allocates the same buffers in the same order. A buffer over {@link SymmetricMemory#MAX_BYTES} is
 * ordinary ND4J memory.
 */
public final class SymmetricFlatMemory implements FlatMemory {

    private final ProcessGroup group;

    public SymmetricFlatMemory(ProcessGroup group) {
        this.group = group;
    }

    @Override
    public INDArray allocate(DataType dtype, long numel) {
        if (numel * dtype.width() > SymmetricMemory.MAX_BYTES) {
            // Too large for one mapping: every member decides alike (same size), and the collectives on this
            // buffer take the Aeron paths.
            return FlatMemory.ND4J.allocate(dtype, numel);
        }
        SymmetricMemory memory = group.allocateSymmetric(numel * dtype.width());
        ByteBuffer bytes = memory.byteBuffer(); // zeroed when the member's block was created
        Pointer pointer;
        Indexer indexer;
        if (dtype == DataType.FLOAT) {
            FloatPointer p = new FloatPointer(bytes.asFloatBuffer());
            pointer = p;
            indexer = FloatIndexer.create(p);
        } else if (dtype == DataType.DOUBLE) {
            DoublePointer p = new DoublePointer(bytes.asDoubleBuffer());
            pointer = p;
            indexer = DoubleIndexer.create(p);
        } else {
            throw new IllegalArgumentException("flat buffers are float32 or float64, not " + dtype);
        }
        DataBuffer buffer = Nd4j.createBuffer(pointer, dtype, numel, indexer);
        return Nd4j.create(buffer, new long[] {numel}, new long[] {1}, 0, 'c', dtype);
    }
}
