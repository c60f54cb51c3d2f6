package dev.tessera.worker.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.optimizers.AdamW;
import dev.tessera.optimizers.AdamWConfig;
import dev.tessera.optimizers.CAME;
import dev.tessera.optimizers.CAMEConfig;
import dev.tessera.optimizers.GradNorm;
import dev.tessera.optimizers.ParamSpan;
import dev.tessera.optimizers.Shard;
import dev.tessera.optimizers.ShardReducer;
import dev.tessera.optimizers.kernel.NativeMemory;
import dev.tessera.worker.checkpoint.SafeTensors;
import dev.tessera.worker.checkpoint.SafeTensorsReader;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Tensors past the 2 GiB mark of a flat float32 buffer of 2.05 GiB, as a model of about 550 M parameters has them.
 * The kernels (RMSNorm and a gemm through their per-tensor views, AdamW and CAME stepping a shard there, the
 * gradient norm over the whole buffer in windows) and the safetensors writer and reader handle them exactly as
 * they handle the same tensors in a small buffer. The big buffers come from calloc: their pages cost nothing until
 * written, so little more than the tensors under test becomes resident, and each test frees its buffers itself.
 */
class BeyondTwoGibTest {

    // Two fillers, each small enough for one view (as planning requires of every tensor), push the tensors under
    // test past 2^31 bytes.
    private static final long FILLER_0 = 300_000_000L;
    private static final long FILLER_1 = 250_000_000L;
    private static final int OUT = 48;
    private static final int IN = 64;
    private static final int ROWS = 6;
    private static final long W_AT = FILLER_0 + FILLER_1;
    private static final long NORM_AT = W_AT + OUT * IN;
    private static final long NUMEL = NORM_AT + IN + 7; // a ragged tail that belongs to no tensor
    private static final int TAIL = (int) (NUMEL - W_AT);

    @TempDir
    Path dir;

    @Test
    void kernelsReadAndWriteTensorsPastTwoGibAsInASmallBuffer() {
        assertTrue(W_AT * Float.BYTES > Integer.MAX_VALUE);
        try (CallocFloats params = new CallocFloats(NUMEL); CallocFloats grads = new CallocFloats(NUMEL)) {
            INDArray p = params.array;
            INDArray g = grads.array;
            INDArray sp = Nd4j.zeros(DataType.FLOAT, TAIL); // the small buffer: the same tensors from 0
            INDArray sg = Nd4j.zeros(DataType.FLOAT, TAIL);
            SplittableRandom rng = new SplittableRandom(11);
            for (int i = 0; i < OUT * IN + IN; i++) {
                float v = (float) (i < OUT * IN ? 0.05 * rng.nextGaussian() : 1 + 0.1 * rng.nextGaussian());
                new Mem(Mem.view(p, W_AT + i, 1)).setF(0, v);
                sp.putScalar(i, v);
            }
            // ND4J's own indexing (long offsets, not NativeMemory) sees what the view wrote.
            assertEquals(sp.getFloat(5L), p.getFloat(W_AT + 5));
            assertEquals(sp.getFloat(OUT * IN + 3L), p.getFloat(NORM_AT + 3));

            INDArray x = random(rng, ROWS, IN);
            INDArray dy = random(rng, ROWS, IN);
            INDArray dOut = random(rng, ROWS, OUT);
            float[][] big = layerPass(p, g, W_AT, NORM_AT, x, dy, dOut);
            float[][] small = layerPass(sp, sg, 0, OUT * IN, x, dy, dOut);
            for (int k = 0; k < big.length; k++) {
                assertArrayEquals(small[k], big[k], "output " + k);
            }
            assertGemmMatchesTheNaiveProduct(x, p, g, dOut);

            // The norm of the whole buffer, read in three windows, is the norm of the tensors written in it.
            double want = 0;
            for (int i = 0; i < TAIL; i++) {
                double v = g.getFloat(W_AT + i);
                want += v * v;
            }
            assertTrue(want > 0);
            assertEquals(want, GradNorm.sumOfSquares(g), 1e-12 * want);
            assertEquals(3, NativeMemory.windows(NUMEL, Float.BYTES).length - 1);
            assertThrows(IllegalArgumentException.class, () -> NativeMemory.bytes(g));

            sg.assign(Mem.view(g, W_AT, TAIL));
            List<ParamSpan> spans = List.of(new ParamSpan("filler.0", 0, FILLER_0, new long[] {FILLER_0}),
                    new ParamSpan("filler.1", FILLER_0, FILLER_1, new long[] {FILLER_1}),
                    new ParamSpan("w", W_AT, OUT * IN, new long[] {OUT, IN}),
                    new ParamSpan("norm", NORM_AT, IN, new long[] {IN}));
            List<ParamSpan> smallSpans = List.of(new ParamSpan("w", 0, OUT * IN, new long[] {OUT, IN}),
                    new ParamSpan("norm", OUT * IN, IN, new long[] {IN}));
            Shard beyond = new Shard(W_AT, NUMEL);
            new AdamW(p, g, spans, AdamWConfig.defaults(), beyond, ShardReducer.LOCAL).step(1, 1e-2, 0.5);
            new AdamW(sp, sg, smallSpans, AdamWConfig.defaults()).step(1, 1e-2, 0.5);
            assertArrayEquals(sp.toFloatVector(), Mem.view(p, W_AT, TAIL).toFloatVector(), "AdamW");
            new CAME(p, g, spans, CAMEConfig.defaults(), beyond, ShardReducer.LOCAL).step(1, 1e-2, 0.5);
            new CAME(sp, sg, smallSpans, CAMEConfig.defaults()).step(1, 1e-2, 0.5);
            assertArrayEquals(sp.toFloatVector(), Mem.view(p, W_AT, TAIL).toFloatVector(), "CAME");
            assertTrue(Mem.view(p, W_AT, OUT * IN).getFloat(0L) != 0f);
        }
    }

    @Test
    void safetensorsWritesAndReadsATensorOverTwoGibAndOneStoredPastIt() throws IOException {
        // In memory where there is a tmpfs: the test is about offsets, and 2 GiB through a disk's fsync took ~50 s.
        Path shm = Path.of("/dev/shm");
        Path folder = Files.isDirectory(shm) && Files.isWritable(shm)
                ? Files.createTempDirectory(shm, "tessera-test-") : dir;
        Path file = folder.resolve("big.safetensors");
        try (CallocFloats flat = new CallocFloats(NUMEL); CallocFloats back = new CallocFloats(NUMEL)) {
            for (long at : new long[] {0, (1L << 28) - 1, 1L << 28, W_AT, NUMEL - 1}) { // window edges, past 2 GiB
                flat.array.putScalar(at, (float) (at % 1000 + 1));
            }
            INDArray after = Nd4j.createFromArray(1.5f, -2.5f, 3.5f);
            Map<String, INDArray> tensors = new LinkedHashMap<>();
            tensors.put("flat", flat.array);
            tensors.put("after", after);
            long size = SafeTensors.write(file, tensors, Map.of());
            try (SafeTensorsReader reader = SafeTensors.open(file)) {
                assertEquals(NUMEL * Float.BYTES, reader.entry("after").begin());
                assertEquals(size, Files.size(file));
                assertArrayEquals(after.toFloatVector(), reader.read("after").toFloatVector());
                long dataStart = size - reader.entry("after").end();
                assertEquals(flat.array.getFloat(W_AT), floatAt(file, dataStart + W_AT * Float.BYTES));
                reader.read("flat", back.array);
            }
            for (long at : new long[] {0, (1L << 28) - 1, 1L << 28, W_AT, NUMEL - 1, NUMEL - 2}) {
                assertEquals(flat.array.getFloat(at), back.array.getFloat(at), "element " + at);
            }
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(folder.equals(dir) ? file : folder);
        }
    }

    @Test
    void aTensorOverOneViewIsRefusedByNameBeforeAnythingIsAllocated() {
        ParameterStore.Builder layout = ParameterStore.builder().add("small", 4).add("huge", 1L << 29); // 2^31 bytes
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> layout.build(DataType.FLOAT));
        assertTrue(e.getMessage().startsWith("tensor huge takes 2147483648 bytes, over the 2147483647"), e.getMessage());
    }

    /**
     * RMSNorm forward and backward with its gain at {@code normAt}, then y W^T and dW += dOut^T y with W at
     * {@code wAt}: the outputs, and the gradients the kernels wrote into {@code grads}.
     */
    private static float[][] layerPass(INDArray params, INDArray grads, long wAt, long normAt, INDArray x,
                                       INDArray dy, INDArray dOut) {
        RMSNorm norm = new RMSNorm(Mem.view(params, normAt, IN), Mem.view(grads, normAt, IN), 1e-5, ROWS);
        INDArray y = Nd4j.zeros(DataType.FLOAT, ROWS, IN);
        INDArray dx = Nd4j.zeros(DataType.FLOAT, ROWS, IN);
        norm.forward(x, y);
        norm.backward(x, dy, dx, false);
        INDArray out = Nd4j.zeros(DataType.FLOAT, ROWS, OUT);
        Linear linear = new Linear(Mem.view(params, wAt, OUT, IN), Mem.view(grads, wAt, OUT, IN));
        linear.forward(y, out, false);
        linear.backward(y, dOut, null, false);
        return new float[][] {flat(y), flat(dx), Mem.view(grads, normAt, IN).toFloatVector(), flat(out),
                Mem.view(grads, wAt, OUT * IN).toFloatVector()};
    }

    /** The gemm on W past 2 GiB, against a triple loop that reads W through ND4J's long indexing. */
    private static void assertGemmMatchesTheNaiveProduct(INDArray x, INDArray params, INDArray grads, INDArray dOut) {
        INDArray y = Nd4j.zeros(DataType.FLOAT, ROWS, IN);
        new RMSNorm(Mem.view(params, NORM_AT, IN), Nd4j.zeros(DataType.FLOAT, IN), 1e-5, ROWS).forward(x, y);
        INDArray out = Nd4j.zeros(DataType.FLOAT, ROWS, OUT);
        Gemm.gemm(y, Mem.view(params, W_AT, OUT, IN), out, false, true, 0.0);
        for (int n = 0; n < ROWS; n++) {
            for (int o = 0; o < OUT; o++) {
                double want = 0;
                for (int i = 0; i < IN; i++) {
                    want += y.getDouble(n, i) * params.getFloat(W_AT + (long) o * IN + i);
                }
                assertEquals(want, out.getDouble(n, o), 1e-5, "out " + n + "," + o);
            }
        }
        for (int o = 0; o < OUT; o++) { // one backward of the layer pass: dW = dOut^T y
            for (int i = 0; i < IN; i++) {
                double want = 0;
                for (int n = 0; n < ROWS; n++) {
                    want += dOut.getDouble(n, o) * y.getDouble(n, i);
                }
                assertEquals(want, grads.getFloat(W_AT + (long) o * IN + i), 1e-5, "dW " + o + "," + i);
            }
        }
    }

    private static INDArray random(SplittableRandom rng, int rows, int cols) {
        INDArray a = Nd4j.zeros(DataType.FLOAT, rows, cols);
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                a.putScalar(i, j, (float) rng.nextGaussian());
            }
        }
        return a;
    }

    private static float[] flat(INDArray a) {
        return a.reshape(a.length()).toFloatVector();
    }

    private static float floatAt(Path file, long position) throws IOException {
        try (FileChannel ch = FileChannel.open(file)) {
            ByteBuffer b = ByteBuffer.allocate(Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(b, position);
            return b.flip().getFloat();
        }
    }
}
