package dev.tessera.worker.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.comm.UserInputException;
import dev.tessera.worker.checkpoint.SafeTensors.DType;
import dev.tessera.worker.checkpoint.SafeTensors.Entry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * An open safetensors file whose header has been checked against the file: every offset lies inside the
 * data section, sizes match shapes and dtypes, and the tensors tile the section exactly. A file that
 * fails any check is refused with a {@link UserInputException} naming it.
 */
public final class SafeTensorsReader implements AutoCloseable {

    /** Same bound as the reference implementation: a larger header is a corrupt length, not a header. */
    private static final long MAX_HEADER = 100L * 1024 * 1024;

    private final Path file;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;

    SafeTensorsReader(Path file) {
        this.file = file;
        try {
            this.channel = FileChannel.open(file, StandardOpenOption.READ);
        } catch (IOException e) {
            throw new UserInputException("cannot open safetensors file " + file + ": " + e.getMessage());
        }
        try {
            long size = channel.size();
            if (size < 8) {
                throw corrupt("it has " + size + " bytes, fewer than the 8-byte header length");
            }
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(len, 0);
            long headerLength = len.flip().getLong();
            if (headerLength < 2 || headerLength > MAX_HEADER || headerLength > size - 8) {
                throw corrupt("header length " + Long.toUnsignedString(headerLength) + " does not fit a file of "
                        + size + " bytes");
            }
            ByteBuffer header = ByteBuffer.allocate((int) headerLength);
            readFully(header, 8);
            this.dataStart = 8 + headerLength;
            Map<String, String> meta = new LinkedHashMap<>();
            this.entries = parse(header.array(), size - dataStart, meta);
            this.metadata = Collections.unmodifiableMap(meta);
        } catch (IOException e) {
            closeQuietly();
            throw new UncheckedIOException("cannot read " + file, e);
        } catch (RuntimeException e) {
            closeQuietly();
            throw e;
        }
    }

    public Path file() {
        return file;
    }

    /** Tensors in file order (by data offset). */
    public List<Entry> entries() {
        return List.copyOf(entries.values());
    }

    public boolean contains(String name) {
        return entries.containsKey(name);
    }

    public Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) {
            throw new UserInputException("safetensors file " + file + " has no tensor " + name);
        }
        return e;
    }

    /** The header's {@code __metadata__} map (empty when absent). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Reads tensor {@code name} into a new array of the file's dtype and shape. */
    public INDArray read(String name) {
        Entry e = entry(name);
        INDArray out = Nd4j.createUninitialized(e.dtype().nd4j(), e.shape().clone(), 'c');
        read(name, out);
        return out;
    }

    /**
     * Reads tensor {@code name} into {@code into}, which must have the same shape. Same dtype and a
     * contiguous target: one read straight into its memory. F32 into F64 or back: read then converted.
     */
    public void read(String name, INDArray into) {
        Entry e = entry(name);
        if (!Arrays.equals(e.shape(), into.shape())) {
            throw new UserInputException("safetensors file " + file + ": tensor " + name + " has shape "
                    + Arrays.toString(e.shape()) + " but the target has shape " + Arrays.toString(into.shape())
                    + " (was it written for a different model config?)");
        }
        boolean direct = loadsDirectly(e, into.dataType()) && NativeBytes.isContiguous(into);
        if (e.numel() == 0) {
            return;
        }
        if (direct) {
            readFully(into, e, dataStart + e.begin());
        } else {
            INDArray staged = Nd4j.createUninitialized(e.dtype().nd4j(), e.shape().clone(), 'c');
            readFully(staged, e, dataStart + e.begin());
            into.assign(staged);
        }
    }

    /**
     * Checks that tensor {@code e} can be loaded into an array of type {@code into} and says whether its bytes go
     * straight into that array's memory (same dtype) or through a converted copy (F32 and F64).
     */
    public boolean loadsDirectly(Entry e, DataType into) {
        DType target;
        try {
            target = DType.of(into);
        } catch (IllegalArgumentException ex) {
            throw new IllegalArgumentException("cannot read into an array of type " + into, ex);
        }
        if (target == e.dtype()) {
            return true;
        }
        if (target.isFloating() && e.dtype().isFloating()) {
            return false;
        }
        throw new UserInputException("safetensors file " + file + ": tensor " + e.name() + " is " + e.dtype()
                + " and cannot be loaded into " + target + " (only F32 and F64 convert)");
    }

    /**
     * Elements {@code [stored, stored + count)} of a tensor go to elements {@code [at, at + count)} of {@code into},
     * a contiguous array of the tensor's dtype.
     */
    public record Piece(long stored, INDArray into, long at, long count) {
    }

    /** Where a piece's bytes lie in the file, and the memory they go to. */
    private record Target(long begin, ByteBuffer memory) {
        long end() {
            return begin + memory.remaining();
        }
    }

    /**
     * Reads the whole file front to back once, at disk speed ({@link DirectFile}), putting each tensor's
     * {@code pieces} into their arrays' memory; when {@code hash}, returns the SHA-256 of all of its bytes (else
     * null, and a file no piece wants is not read at). One pass serves both the load and the check of the hash.
     */
    public String scan(Map<String, List<Piece>> pieces, boolean hash) {
        List<Target> targets = new ArrayList<>();
        pieces.forEach((name, list) -> {
            Entry e = entry(name);
            long width = e.dtype().size();
            for (Piece p : list) {
                if (p.stored() < 0 || p.count() < 0 || p.stored() + p.count() > e.numel() || p.at() < 0
                        || p.at() + p.count() > p.into().length() || p.into().dataType() != e.dtype().nd4j()
                        || !NativeBytes.isContiguous(p.into())) {
                    throw new IllegalArgumentException("cannot read elements [" + p.stored() + ", "
                            + (p.stored() + p.count()) + ") of " + name + " (" + e.dtype() + ", " + e.numel()
                            + " elements) into elements from " + p.at() + " of " + p.into().length() + " "
                            + p.into().dataType());
                }
                long at = dataStart + e.begin() + p.stored() * width;
                for (ByteBuffer window : NativeBytes.of(p.into(), p.at(), p.count())) {
                    targets.add(new Target(at, window));
                    at += window.remaining();
                }
            }
        });
        targets.sort(Comparator.comparingLong(Target::begin));
        for (int i = 1; i < targets.size(); i++) {
            if (targets.get(i).begin() < targets.get(i - 1).end()) {
                throw new IllegalArgumentException("two pieces read the same bytes of " + file);
            }
        }
        if (!hash && targets.isEmpty()) {
            return null;
        }
        MessageDigest md = hash ? Manifest.newSha256() : null;
        int[] next = {0};
        try {
            DirectFile.read(file, (offset, chunk) -> {
                if (md != null) {
                    md.update(chunk.duplicate());
                }
                long end = offset + chunk.remaining();
                while (next[0] < targets.size() && targets.get(next[0]).end() <= offset) {
                    next[0]++;
                }
                for (int i = next[0]; i < targets.size() && targets.get(i).begin() < end; i++) {
                    Target t = targets.get(i);
                    long from = Math.max(offset, t.begin());
                    long to = Math.min(end, t.end());
                    t.memory().put((int) (from - t.begin()), chunk, (int) (from - offset), (int) (to - from));
                }
            });
        } catch (IOException ex) {
            throw new UncheckedIOException("cannot read " + file, ex);
        }
        return md == null ? null : HexFormat.of().formatHex(md.digest());
    }

    /** Tensor {@code name}'s entry, refused unless it has shape {@code shape}. */
    public Entry requireShape(String name, long[] shape) {
        Entry e = entry(name);
        if (!Arrays.equals(e.shape(), shape)) {
            throw new UserInputException("safetensors file " + file + ": tensor " + name + " has shape "
                    + Arrays.toString(e.shape()) + " but the target has shape " + Arrays.toString(shape)
                    + " (was it written for a different model config?)");
        }
        return e;
    }

    @Override
    public void close() {
        closeQuietly();
    }

    /** Bytes from file offset {@code position} straight into {@code dst}'s memory, window by window. */
    private void readFully(INDArray dst, Entry e, long position) {
        try {
            for (ByteBuffer window : NativeBytes.of(dst)) {
                int bytes = window.remaining();
                readFully(window, position);
                position += bytes;
            }
        } catch (IOException ex) {
            throw new UncheckedIOException("cannot read tensor " + e.name() + " from " + file, ex);
        }
    }

    private void readFully(ByteBuffer dst, long position) throws IOException {
        long pos = position;
        while (dst.hasRemaining()) {
            int n = channel.read(dst, pos);
            if (n < 0) {
                throw corrupt("it ended at byte " + pos + " while " + dst.remaining()
                        + " more bytes were expected (truncated while open?)");
            }
            pos += n;
        }
    }

    private Map<String, Entry> parse(byte[] header, long dataLength, Map<String, String> meta) {
        JsonNode root;
        try {
            root = Json.COMPACT.readTree(header);
        } catch (IOException ex) {
            throw corrupt("its header is not valid JSON (" + firstLine(ex.getMessage()) + ")");
        }
        if (root == null || !root.isObject()) {
            throw corrupt("its header is not a JSON object");
        }
        List<Entry> list = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            if (field.getKey().equals(SafeTensors.METADATA_KEY)) {
                parseMetadata(field.getValue(), meta);
            } else {
                list.add(parseEntry(field.getKey(), field.getValue(), dataLength));
            }
        }
        list.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long expected = 0;
        for (Entry e : list) {
            if (e.begin() != expected) {
                throw corrupt("tensor " + e.name() + " starts at data offset " + e.begin() + " but the previous tensor"
                        + " ends at " + expected + " (overlapping or holey data section)");
            }
            expected = e.end();
        }
        if (expected != dataLength) {
            throw corrupt("its tensors cover " + expected + " bytes but the data section has " + dataLength
                    + (expected < dataLength ? " (trailing bytes)" : ""));
        }
        Map<String, Entry> out = new LinkedHashMap<>();
        for (Entry e : list) {
            out.put(e.name(), e);
        }
        return out;
    }

    private void parseMetadata(JsonNode node, Map<String, String> meta) {
        if (!node.isObject()) {
            throw corrupt(SafeTensors.METADATA_KEY + " is not a JSON object");
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            if (!f.getValue().isTextual()) {
                throw corrupt(SafeTensors.METADATA_KEY + "." + f.getKey() + " is not a string");
            }
            meta.put(f.getKey(), f.getValue().asText());
        }
    }

    private Entry parseEntry(String name, JsonNode node, long dataLength) {
        if (!node.isObject()) {
            throw corrupt("tensor " + name + " is not described by a JSON object");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw corrupt("tensor " + name + " has no dtype");
        }
        DType dtype;
        try {
            dtype = DType.valueOf(dtypeNode.asText());
        } catch (IllegalArgumentException ex) {
            throw new UserInputException("safetensors file " + file + ": tensor " + name + " has dtype "
                    + dtypeNode.asText() + "; Tessera reads F32, F64, I32 and I64 (convert the file first)");
        }
        JsonNode shapeNode = node.get("shape");
        if (shapeNode == null || !shapeNode.isArray()) {
            throw corrupt("tensor " + name + " has no shape array");
        }
        long[] shape = new long[shapeNode.size()];
        long numel = 1;
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = shapeNode.get(i);
            if (!d.canConvertToLong() || !d.isIntegralNumber() || d.asLong() < 0) {
                throw corrupt("tensor " + name + " has an invalid shape " + shapeNode);
            }
            shape[i] = d.asLong();
            numel = multiply(numel, shape[i], name);
        }
        JsonNode offsets = node.get("data_offsets");
        if (offsets == null || !offsets.isArray() || offsets.size() != 2
                || !offsets.get(0).isIntegralNumber() || !offsets.get(1).isIntegralNumber()
                || !offsets.get(0).canConvertToLong() || !offsets.get(1).canConvertToLong()) {
            throw corrupt("tensor " + name + " has no valid data_offsets [begin, end]");
        }
        long begin = offsets.get(0).asLong();
        long end = offsets.get(1).asLong();
        if (begin < 0 || end < begin || end > dataLength) {
            throw corrupt("tensor " + name + " has data_offsets [" + begin + ", " + end + "] outside the data section of "
                    + dataLength + " bytes (truncated or corrupt file)");
        }
        long bytes = multiply(numel, dtype.size(), name);
        if (end - begin != bytes) {
            throw corrupt("tensor " + name + " has " + (end - begin) + " bytes but " + dtype + " " + Arrays.toString(shape)
                    + " needs " + bytes);
        }
        return new Entry(name, dtype, shape, begin, end);
    }

    private long multiply(long a, long b, String name) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException ex) {
            throw corrupt("tensor " + name + " has a shape whose size overflows");
        }
    }

    private UserInputException corrupt(String problem) {
        return new UserInputException("safetensors file " + file + " is corrupt: " + problem);
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "unknown error";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    private void closeQuietly() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // Read-only channel: nothing to lose.
        }
    }
}
