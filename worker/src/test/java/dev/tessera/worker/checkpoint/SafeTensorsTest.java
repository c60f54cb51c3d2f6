package dev.tessera.worker.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.comm.UserInputException;
import dev.tessera.worker.model.ParameterStore;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class SafeTensorsTest {

    @TempDir
    Path dir;

    @Test
    void roundTripsViewsOfAllTypesBitExactly() {
        ParameterStore store = TinyModel.store(TinyModel.dense(), DataType.FLOAT, 1);
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        // Views at non-zero offsets of one flat buffer: the case the writer must slice correctly.
        tensors.put("a", store.param("model.layers.1.self_attn.k_proj.weight"));
        tensors.put("b", store.param("model.norm.weight"));
        tensors.put("c", Nd4j.rand(DataType.DOUBLE, 3, 5));
        tensors.put("d", Nd4j.createFromArray(new int[] {1, -2, Integer.MAX_VALUE}));
        tensors.put("e", Nd4j.createFromArray(new long[] {Long.MIN_VALUE, 7}));
        Path file = dir.resolve("t.safetensors");
        long size = SafeTensors.write(file, tensors, Map.of("format", "pt", "note", "hi"));
        assertEquals(size, file.toFile().length());
        try (SafeTensorsReader r = SafeTensors.open(file)) {
            assertEquals(Map.of("format", "pt", "note", "hi"), r.metadata());
            assertEquals(5, r.entries().size());
            for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
                INDArray back = r.read(e.getKey());
                assertEquals(e.getValue().dataType(), back.dataType());
                assertArrayEquals(e.getValue().shape(), back.shape());
                assertEquals(e.getValue(), back, e.getKey());
            }
            // Reading back into a view writes exactly that view's slice of the flat buffer.
            ParameterStore other = TinyModel.store(TinyModel.dense(), DataType.FLOAT, 2);
            INDArray before = other.params().dup();
            r.read("a", other.param("model.layers.1.self_attn.k_proj.weight"));
            ParameterStore.Tensor t = other.tensor("model.layers.1.self_attn.k_proj.weight");
            for (long i = 0; i < other.numel(); i++) {
                float expected = (i >= t.offset() && i < t.end())
                        ? store.param(t.name()).reshape(t.numel()).getFloat(i - t.offset())
                        : before.getFloat(i);
                assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(other.params().getFloat(i)), "element " + i);
            }
        }
    }

    @Test
    void fileLayoutFollowsTheSpec() throws IOException {
        Path file = dir.resolve("t.safetensors");
        INDArray x = Nd4j.createFromArray(new float[][] {{1, 2, 3}, {4, 5, 6}});
        SafeTensors.write(file, Map.of("x", x), Map.of());
        byte[] bytes = Files.readAllBytes(file);
        long n = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, (8 + n) % 8, "data section is 8-byte aligned");
        JsonNode header = Json.MAPPER.readTree(new String(bytes, 8, (int) n, StandardCharsets.UTF_8).trim());
        assertEquals("F32", header.get("x").get("dtype").asText());
        assertEquals("[2,3]", header.get("x").get("shape").toString());
        assertEquals("[0,24]", header.get("x").get("data_offsets").toString());
        assertFalse(header.has(SafeTensors.METADATA_KEY));
        ByteBuffer data = ByteBuffer.wrap(bytes, (int) (8 + n), 24).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 1; i <= 6; i++) {
            assertEquals(i, data.getFloat());
        }
    }

    @Test
    void convertsBetweenFloat32AndFloat64() {
        Path file = dir.resolve("t.safetensors");
        INDArray f32 = Nd4j.createFromArray(new float[] {0.1f, -3.5f, 1e-7f});
        SafeTensors.write(file, Map.of("w", f32), Map.of());
        try (SafeTensorsReader r = SafeTensors.open(file)) {
            INDArray f64 = Nd4j.zeros(DataType.DOUBLE, 3);
            r.read("w", f64);
            for (int i = 0; i < 3; i++) {
                assertEquals((double) f32.getFloat(i), f64.getDouble(i));
            }
        }
    }

    @Test
    void refusesShapeMismatchAndUnknownNames() {
        Path file = dir.resolve("t.safetensors");
        SafeTensors.write(file, Map.of("w", Nd4j.zeros(DataType.FLOAT, 2, 3)), Map.of());
        try (SafeTensorsReader r = SafeTensors.open(file)) {
            UserInputException e = assertThrows(UserInputException.class, () -> r.read("w", Nd4j.zeros(DataType.FLOAT, 3, 2)));
            assertTrue(e.getMessage().contains("tensor w has shape [2, 3]"), e.getMessage());
            e = assertThrows(UserInputException.class, () -> r.read("nope"));
            assertTrue(e.getMessage().contains("no tensor nope"), e.getMessage());
        }
    }

    @Test
    void refusesNonContiguousArrays() {
        INDArray transposed = Nd4j.rand(DataType.FLOAT, 3, 4).transpose();
        assertThrows(IllegalArgumentException.class,
                () -> SafeTensors.write(dir.resolve("t.safetensors"), Map.of("t", transposed), Map.of()));
    }

    @Test
    void outOfRangeOffsetsAreAClearError() throws IOException {
        Path file = handMade("{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
        assertCorrupt(file, "data_offsets [0, 16] outside the data section of 8 bytes");
    }

    @Test
    void sizeNotMatchingShapeIsAClearError() throws IOException {
        Path file = handMade("{\"x\":{\"dtype\":\"F64\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
        assertCorrupt(file, "tensor x has 16 bytes but F64 [4] needs 32");
    }

    @Test
    void overlappingOrHoleyDataIsAClearError() throws IOException {
        Path file = handMade("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
        assertCorrupt(file, "tensor y starts at data offset 4");
        Path trailing = handMade("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12);
        assertCorrupt(trailing, "trailing bytes");
    }

    @Test
    void badHeaderLengthOrJsonIsAClearError() throws IOException {
        Path tiny = Files.write(dir.resolve("tiny.safetensors"), new byte[] {1, 2, 3});
        assertCorrupt(tiny, "fewer than the 8-byte header length");
        byte[] huge = new byte[16];
        ByteBuffer.wrap(huge).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40);
        assertCorrupt(Files.write(dir.resolve("huge.safetensors"), huge), "header length 1099511627776 does not fit");
        assertCorrupt(handMade("{\"x\": [", 0), "not valid JSON");
        assertCorrupt(handMade("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "not valid JSON");
    }

    @Test
    void truncatedFileIsAClearError() throws IOException {
        Path file = dir.resolve("t.safetensors");
        SafeTensors.write(file, Map.of("w", Nd4j.rand(DataType.FLOAT, 10)), Map.of());
        byte[] all = Files.readAllBytes(file);
        Files.write(file, java.util.Arrays.copyOf(all, all.length - 3));
        assertCorrupt(file, "outside the data section");
    }

    private Path handMade(String header, int dataBytes) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + json.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(json.length).put(json);
        return Files.write(dir.resolve("hand-" + Math.abs(header.hashCode()) + ".safetensors"), b.array());
    }

    private static void assertCorrupt(Path file, String expected) {
        UserInputException e = assertThrows(UserInputException.class, () -> SafeTensors.open(file).close());
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
    }
}
