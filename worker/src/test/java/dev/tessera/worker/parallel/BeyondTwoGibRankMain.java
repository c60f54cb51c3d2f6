package dev.tessera.worker.parallel;

import dev.tessera.comm.ChildJvm;
import dev.tessera.comm.CommConfig;
import dev.tessera.comm.Communicator;
import dev.tessera.comm.DriverMode;
import dev.tessera.comm.StaticPeerDirectory;
import dev.tessera.comm.Transport;
import dev.tessera.optimizers.kernel.NativeMemory;
import dev.tessera.worker.checkpoint.SafeTensors;
import dev.tessera.worker.checkpoint.SafeTensorsReader;
import dev.tessera.worker.model.CallocFloats;
import dev.tessera.worker.model.ParameterStore;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.agrona.concurrent.UnsafeBuffer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * One rank of {@link BeyondTwoGibProcessTest}: a flat float32 gradient buffer of 640 M elements (2.56 GB, three
 * tensors, two of them past the 2 GiB mark) all-reduced through {@link BucketedAllReduce} as data-parallel training
 * does it, every element checked; then rank 0 writes the reduced buffer as a safetensors checkpoint, reads it back
 * into a second buffer and compares every byte. Args: rank world aeronDir jobId basePort checkpointDir.
 */
public final class BeyondTwoGibRankMain {

    static final long[] TENSORS = {200_000_000L, 350_000_000L, 90_000_003L}; // the second ends past 2^31 bytes
    static final long ELEMENTS = TENSORS[0] + TENSORS[1] + TENSORS[2];

    public static void main(String[] args) throws Exception {
        int rank = Integer.parseInt(args[0]);
        int world = Integer.parseInt(args[1]);
        CommConfig config = CommConfig.defaults(args[3], CommConfig.tokenFromEnvironment())
                .withDriver(DriverMode.SHARED_PER_HOST, args[2]).withTransport(Transport.IPC).withDeadlineMs(60_000);
        int code = 1;
        try (Communicator comm = Communicator.connect(config,
                StaticPeerDirectory.localhost(world, Integer.parseInt(args[4])), rank);
             CallocFloats grads = new CallocFloats(ELEMENTS)) {
            List<ParameterStore.Tensor> tensors = layout();
            fill(grads.array, rank);
            long start = System.nanoTime();
            BucketedAllReduce allReduce = new BucketedAllReduce(comm.world(), GradientCodec.IDENTITY, grads.array,
                    tensors, ParallelSpec.BUCKET_ELEMENTS);
            allReduce.finish();
            System.out.printf("all-reduce of %d floats in %d buckets: %.1f s%n", ELEMENTS, allReduce.bucketCount(),
                    (System.nanoTime() - start) / 1e9);
            checkSum(grads.array, world);
            if (rank == 0) {
                roundTrip(grads.array, tensors, Path.of(args[5]).resolve("flat.safetensors"));
            }
            comm.world().barrier();
            System.out.println("RESULT OK");
            code = 0;
        } catch (Throwable e) {
            System.out.println("FAIL " + e);
            e.printStackTrace(System.out);
        }
        System.out.flush();
        System.exit(code);
    }

    static ChildJvm start(int rank, int world, String aeronDir, String jobId, int basePort, Path dir) {
        return ChildJvm.start("rank-" + rank, List.of(), List.of("-Xmx512m", "-XX:MaxDirectMemorySize=1g",
                        "-Dorg.bytedeco.javacpp.maxPhysicalBytes=0"), // the calloc'd buffers are its memory
                BeyondTwoGibRankMain.class.getName(), List.of(Integer.toString(rank), Integer.toString(world),
                        aeronDir, jobId, Integer.toString(basePort), dir.toString()),
                Map.of(CommConfig.TOKEN_ENV, jobId), dir.resolve("rank-" + rank + ".log"));
    }

    static List<ParameterStore.Tensor> layout() {
        List<ParameterStore.Tensor> tensors = new java.util.ArrayList<>();
        long at = 0;
        for (int i = 0; i < TENSORS.length; i++) {
            tensors.add(new ParameterStore.Tensor("t" + i, new long[] {TENSORS[i]}, at, TENSORS[i]));
            at += TENSORS[i];
        }
        return tensors;
    }

    /** Small integers: the sum over ranks is exact in float32 whatever order the collective adds in. */
    static float value(int rank, long i) {
        return ((rank * 7919L + i * 31L) % 2001L) - 1000L;
    }

    private static void fill(INDArray flat, int rank) {
        long[] w = NativeMemory.windows(ELEMENTS, Float.BYTES);
        for (int k = 0; k + 1 < w.length; k++) {
            UnsafeBuffer b = NativeMemory.unsafe(flat, w[k], w[k + 1]);
            for (long i = w[k]; i < w[k + 1]; i++) {
                b.putFloat((int) ((i - w[k]) * Float.BYTES), value(rank, i));
            }
        }
    }

    private static void checkSum(INDArray flat, int world) {
        long[] w = NativeMemory.windows(ELEMENTS, Float.BYTES);
        for (int k = 0; k + 1 < w.length; k++) {
            UnsafeBuffer b = NativeMemory.unsafe(flat, w[k], w[k + 1]);
            for (long i = w[k]; i < w[k + 1]; i++) {
                float want = 0;
                for (int r = 0; r < world; r++) {
                    want += value(r, i);
                }
                float got = b.getFloat((int) ((i - w[k]) * Float.BYTES));
                if (got != want) {
                    throw new AssertionError("element " + i + ": " + got + ", want " + want);
                }
            }
        }
        System.out.println("all " + ELEMENTS + " elements are the sum over " + world + " ranks");
    }

    private static void roundTrip(INDArray flat, List<ParameterStore.Tensor> tensors, Path file) throws Exception {
        Map<String, INDArray> views = new LinkedHashMap<>();
        for (ParameterStore.Tensor t : tensors) {
            views.put(t.name(), flat.get(NDArrayIndex.interval(t.offset(), t.end())));
        }
        long start = System.nanoTime();
        long bytes = SafeTensors.write(file, views, Map.of("what", "beyond two GiB"));
        double wrote = (System.nanoTime() - start) / 1e9;
        try (CallocFloats back = new CallocFloats(ELEMENTS)) {
            start = System.nanoTime();
            try (SafeTensorsReader reader = SafeTensors.open(file)) {
                for (ParameterStore.Tensor t : tensors) {
                    reader.read(t.name(), back.array.get(NDArrayIndex.interval(t.offset(), t.end())));
                }
            }
            System.out.printf("checkpoint of %d bytes: written in %.1f s, read in %.1f s%n", bytes, wrote,
                    (System.nanoTime() - start) / 1e9);
            long[] w = NativeMemory.windows(ELEMENTS, Float.BYTES);
            for (int k = 0; k + 1 < w.length; k++) {
                ByteBuffer a = NativeMemory.bytes(flat, w[k], w[k + 1] - w[k]);
                ByteBuffer b = NativeMemory.bytes(back.array, w[k], w[k + 1] - w[k]);
                int at = a.mismatch(b);
                if (at >= 0) {
                    throw new AssertionError("checkpoint round trip differs at byte " + (w[k] * Float.BYTES + at));
                }
            }
        } finally {
            java.nio.file.Files.deleteIfExists(file);
        }
        System.out.println("checkpoint round trip: all " + ELEMENTS + " elements the same bits");
    }
}
