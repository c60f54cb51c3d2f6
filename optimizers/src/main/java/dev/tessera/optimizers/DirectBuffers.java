package dev.tessera.optimizers;

import java.nio.ByteBuffer;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Direct NIO views of ND4J arrays, so loops touch native memory without copies. */
public final class DirectBuffers {

    private DirectBuffers() {
    }

    /** The bytes of a contiguous array (which may be an offset view into a larger buffer). */
    public static ByteBuffer bytes(INDArray contiguous) {
        ByteBuffer whole = contiguous.data().asNio();
        int width = contiguous.dataType().width();
        int start = Math.toIntExact(contiguous.offset() * width);
        int length = Math.toIntExact(contiguous.length() * width);
        return whole.duplicate().position(start).limit(start + length).slice();
    }
}
