package dev.tessera.worker.checkpoint;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The safetensors format (Hugging Face): an 8-byte little-endian header length {@code N}, {@code N} bytes
 * of JSON ({@code name -> {dtype, shape, data_offsets}} plus an optional string map {@code __metadata__}),
 * then the tensors' bytes, little-endian, C order, tiling the data section without holes.
 *
 * <p>Tensors are written from the arrays' native buffers and read into them through a few aligned chunks
 * ({@link DirectFile}); nothing is staged on the heap, so a checkpoint costs no more memory than the model already
 * uses, plus those chunks.
 */
public final class SafeTensors {

    /** The element types Tessera reads and writes, with their safetensors names. */
    public enum DType {
        F32(4, DataType.FLOAT), F64(8, DataType.DOUBLE), I32(4, DataType.INT), I64(8, DataType.LONG);

        private final int size;
        private final DataType nd4j;

        DType(int size, DataType nd4j) {
            this.size = size;
            this.nd4j = nd4j;
        }

        public int size() {
            return size;
        }

        public DataType nd4j() {
            return nd4j;
        }

        public boolean isFloating() {
            return this == F32 || this == F64;
        }

        public static DType of(DataType type) {
            for (DType d : values()) {
                if (d.nd4j == type) {
                    return d;
                }
            }
            throw new IllegalArgumentException("safetensors export supports FLOAT, DOUBLE, INT and LONG, not " + type);
        }
    }

    /** One tensor of a file: its bytes are {@code [begin, end)} of the data section. */
    public record Entry(String name, DType dtype, long[] shape, long begin, long end) {
        public long numel() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    /** Name of the metadata field in the header. */
    public static final String METADATA_KEY = "__metadata__";

    /** The header is padded to keep the data section 8-byte aligned, as the reference implementation does. */
    private static final int ALIGNMENT = 8;

    private SafeTensors() {
    }

    /**
     * Writes {@code tensors} in iteration order, fsyncs, and returns the file size. Each array must be a
     * contiguous C-order array or view (as {@code ParameterStore} views are) of a supported type.
     */
    public static long write(Path file, Map<String, INDArray> tensors, Map<String, String> metadata) {
        return write(file, tensors, metadata, (path, contents) -> { });
    }

    /**
     * As {@link #write(Path, Map, Map)}, first handing {@code contents} the file's bytes in order, as read-only
     * buffers over the header and the arrays' own memory: the checkpoint writer hashes them on another core while
     * this thread writes, and never reads the file back.
     */
    public static long write(Path file, Map<String, INDArray> tensors, Map<String, String> metadata,
                             BiConsumer<Path, List<ByteBuffer>> contents) {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new UnsupportedOperationException("safetensors I/O assumes a little-endian machine");
        }
        ObjectNode header = Json.COMPACT.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = header.putObject(METADATA_KEY);
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
            String name = e.getKey();
            if (name.equals(METADATA_KEY)) {
                throw new IllegalArgumentException("tensor name " + METADATA_KEY + " is reserved");
            }
            INDArray arr = e.getValue();
            requireContiguous(name, arr);
            DType dtype = DType.of(arr.dataType());
            long bytes = arr.length() * dtype.size();
            ObjectNode t = header.putObject(name);
            t.put("dtype", dtype.name());
            ArrayNode shape = t.putArray("shape");
            for (long d : arr.shape()) {
                shape.add(d);
            }
            t.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] json = headerBytes(header);
        ByteBuffer prefix = ByteBuffer.allocate(8 + json.length).order(ByteOrder.LITTLE_ENDIAN);
        prefix.putLong(json.length).put(json).flip();
        List<ByteBuffer> parts = new ArrayList<>();
        parts.add(prefix);
        for (INDArray arr : tensors.values()) {
            parts.addAll(List.of(NativeBytes.of(arr)));
        }
        contents.accept(file, parts.stream().map(ByteBuffer::asReadOnlyBuffer).toList());
        try {
            return DirectFile.write(file, parts);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    /** Opens {@code file} and validates its header; the caller closes the reader. */
    public static SafeTensorsReader open(Path file) {
        return new SafeTensorsReader(file);
    }

    private static byte[] headerBytes(ObjectNode header) {
        try {
            byte[] json = Json.COMPACT.writeValueAsBytes(header);
            int padded = (int) (((8L + json.length + ALIGNMENT - 1) / ALIGNMENT) * ALIGNMENT - 8);
            byte[] out = Arrays.copyOf(json, padded);
            Arrays.fill(out, json.length, padded, (byte) ' ');
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void requireContiguous(String name, INDArray arr) {
        if (!NativeBytes.isContiguous(arr)) {
            throw new IllegalArgumentException("tensor " + name + " is not a contiguous C-order array (shape "
                    + Arrays.toString(arr.shape()) + ", stride " + Arrays.toString(arr.stride()) + ")");
        }
    }
}
