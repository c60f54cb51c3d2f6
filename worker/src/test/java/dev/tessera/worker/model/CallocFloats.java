package dev.tessera.worker.model;

import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.indexer.FloatIndexer;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A zeroed float32 array of {@code n} elements in calloc'd memory, freed on close. Its pages cost nothing until
 * written, so tests of buffers past 2 GiB make resident only what they touch, and free it themselves.
 */
public final class CallocFloats implements AutoCloseable {

    public final INDArray array;
    private final Pointer memory;

    public CallocFloats(long n) {
        memory = Pointer.calloc(n, Float.BYTES);
        if (memory == null || memory.isNull()) {
            throw new IllegalStateException("calloc of " + n + " floats failed");
        }
        FloatPointer floats = new FloatPointer(memory).capacity(n);
        DataBuffer buffer = Nd4j.createBuffer(floats, DataType.FLOAT, n, FloatIndexer.create(floats));
        array = Nd4j.create(buffer, new long[] {n}, new long[] {1}, 0, 'c', DataType.FLOAT);
    }

    @Override
    public void close() {
        Pointer.free(memory);
    }
}
