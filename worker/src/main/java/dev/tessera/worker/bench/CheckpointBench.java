package dev.tessera.worker.bench;

import dev.tessera.optimizers.AdamW;
import dev.tessera.optimizers.AdamWConfig;
import dev.tessera.optimizers.StateSlice;
import dev.tessera.optimizers.kernel.NativeMemory;
import dev.tessera.worker.checkpoint.Checkpoint;
import dev.tessera.worker.checkpoint.CheckpointWriter;
import dev.tessera.worker.checkpoint.OptimizerShards;
import dev.tessera.worker.model.ParameterStore;
import dev.tessera.worker.model.Transformer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import java.util.zip.CRC32C;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Writes and reads back a checkpoint of a preset's model and AdamW state, as training does (safetensors files
 * fsynced, a SHA-256 manifest, the rename; on load each file read into place once and its hash checked on the way,
 * as a worker resumes), and times {@code dd} writing (with fsync) and reading the same number of bytes in the same
 * folder, so the checkpoint's GB/s reads against the disk's.
 */
public final class CheckpointBench {

    /**
     * {@code dd}'s times are its best of going through the page cache and around it ({@code oflag/iflag=direct}):
     * the disk's speed, compared with at its best.
     *
     * @param cold whether the page cache was dropped before each read (needs root): else reads may come from memory
     */
    public record Result(String preset, long params, long bytes, double writeSeconds, double readSeconds,
                         Dd ddBuffered, Dd ddDirect, boolean cold) {
        public double writeGbps() {
            return bytes / writeSeconds / 1e9;
        }

        public double readGbps() {
            return bytes / readSeconds / 1e9;
        }

        public double ddWriteGbps() {
            return bytes / Math.min(ddBuffered.writeSeconds(), ddDirect.writeSeconds()) / 1e9;
        }

        public double ddReadGbps() {
            return bytes / Math.min(ddBuffered.readSeconds(), ddDirect.readSeconds()) / 1e9;
        }

        public String json() {
            return String.format(Locale.ROOT, "{\"preset\":\"%s\",\"params\":%d,\"bytes\":%d,\"write_gbps\":%.3f,"
                            + "\"read_gbps\":%.3f,\"dd_write_gbps\":%.3f,\"dd_read_gbps\":%.3f,\"write_vs_dd\":%.3f,"
                            + "\"read_vs_dd\":%.3f,\"write_s\":%.2f,\"read_s\":%.2f,\"dd_buffered_write_gbps\":%.3f,"
                            + "\"dd_buffered_read_gbps\":%.3f,\"dd_direct_write_gbps\":%.3f,\"dd_direct_read_gbps\":%.3f,"
                            + "\"cold\":%b}",
                    preset, params, bytes, writeGbps(), readGbps(), ddWriteGbps(), ddReadGbps(),
                    writeGbps() / ddWriteGbps(), readGbps() / ddReadGbps(), writeSeconds, readSeconds,
                    bytes / ddBuffered.writeSeconds() / 1e9, bytes / ddBuffered.readSeconds() / 1e9,
                    bytes / ddDirect.writeSeconds() / 1e9, bytes / ddDirect.readSeconds() / 1e9, cold);
        }
    }

    /** Seconds {@code dd} took to write (with fsync) and read the checkpoint's number of bytes. */
    public record Dd(double writeSeconds, double readSeconds) {
    }

    private static final long DD_BLOCK = 64L << 20;

    private CheckpointBench() {
    }

    /** Everything it writes goes under a fresh folder in {@code parent}, removed at the end. */
    public static Result run(ModelPreset preset, Path parent, boolean dropCaches) {
        Path dir = createDirectory(parent);
        try {
            Transformer model = new Transformer(preset.config(), DataType.FLOAT, 1, 1);
            model.initialize(1);
            ParameterStore params = model.parameters();
            params.grads().assign(params.params()); // a gradient for the step that fills AdamW's moments
            AdamW adamw = new AdamW(params.params(), params.grads(), params.spans(), AdamWConfig.defaults());
            adamw.step(1, 1e-3, 1.0);
            Map<String, StateSlice> state = adamw.state();
            long digest = digest(params.params(), state);

            long start = System.nanoTime();
            Path checkpoint = CheckpointWriter.write(dir, 1, preset.config(), params, state, Map.of("step", 1L));
            double write = seconds(start);
            long bytes = sizeOf(checkpoint);

            params.params().assign(0); // what is read back must come from the files
            state.values().forEach(s -> s.data().assign(0));
            boolean cold = dropCaches && dropPageCache();
            start = System.nanoTime();
            Checkpoint loaded = Checkpoint.openToLoad(checkpoint); // as a worker resumes: one pass, hashed on the way
            loaded.loadParameters(params);
            OptimizerShards.load(loaded, state, params);
            loaded.verifyRest();
            double read = seconds(start);
            if (digest(params.params(), state) != digest) {
                throw new IllegalStateException("the checkpoint read back differs from what was written");
            }

            Dd buffered = dd(dir.resolve("dd.bin"), bytes, cold, "conv=fsync", "");
            Dd direct = dd(dir.resolve("dd.bin"), bytes, cold, "oflag=direct conv=fsync", "iflag=direct");
            return new Result(preset.id(), params.numel(), bytes, write, read, buffered, direct, cold);
        } finally {
            delete(dir);
        }
    }

    /** CRC32C over every byte of the parameters and the optimizer state. */
    private static long digest(INDArray params, Map<String, StateSlice> state) {
        CRC32C crc = new CRC32C();
        List<INDArray> arrays = new ArrayList<>();
        arrays.add(params);
        state.values().forEach(s -> arrays.add(s.data()));
        for (INDArray a : arrays) {
            long[] cuts = NativeMemory.windows(a.length(), a.dataType().width());
            for (int w = 0; w + 1 < cuts.length; w++) {
                ByteBuffer window = NativeMemory.bytes(a, cuts[w], cuts[w + 1] - cuts[w]);
                crc.update(window);
            }
        }
        return crc.getValue();
    }

    /** {@code sync; echo 3 > /proc/sys/vm/drop_caches}: true if it was allowed (root). */
    private static boolean dropPageCache() {
        try {
            run(List.of("sync"));
            Files.writeString(Path.of("/proc/sys/vm/drop_caches"), "3");
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** {@code dd} writing then reading {@code bytes} (rounded up to whole blocks, its times scaled back). */
    private static Dd dd(Path file, long bytes, boolean cold, String writeFlags, String readFlags) {
        long blocks = (bytes + DD_BLOCK - 1) / DD_BLOCK;
        double scale = bytes / (double) (blocks * DD_BLOCK);
        double write = dd("if=/dev/zero of=" + file + " bs=64M count=" + blocks + " " + writeFlags);
        if (cold) {
            dropPageCache();
        }
        double read = dd("if=" + file + " of=/dev/null bs=64M " + readFlags);
        try {
            Files.delete(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + file, e);
        }
        return new Dd(write * scale, read * scale);
    }

    private static double dd(String args) {
        List<String> command = new ArrayList<>(List.of("dd", "status=none"));
        command.addAll(List.of(args.strip().split(" +")));
        long start = System.nanoTime();
        try {
            run(command);
        } catch (IOException e) {
            throw new UncheckedIOException("dd failed: " + String.join(" ", command), e);
        }
        return seconds(start);
    }

    private static void run(List<String> command) throws IOException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        try {
            if (!p.waitFor(30, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                throw new IOException(String.join(" ", command) + " did not finish in 30 minutes");
            }
            if (p.exitValue() != 0) {
                throw new IOException(String.join(" ", command) + " exited " + p.exitValue() + ": "
                        + new String(p.getInputStream().readAllBytes()).strip());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
            throw new IOException("interrupted while waiting for " + String.join(" ", command), e);
        }
    }

    private static double seconds(long startNanos) {
        return (System.nanoTime() - startNanos) / 1e9;
    }

    private static Path createDirectory(Path parent) {
        try {
            Files.createDirectories(parent);
            return Files.createTempDirectory(parent, "tessera-bench-checkpoint-");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a folder in " + parent, e);
        }
    }

    private static long sizeOf(Path dir) {
        try (Stream<Path> files = Files.walk(dir)) {
            long total = 0;
            for (Path p : files.filter(Files::isRegularFile).toList()) {
                total += Files.size(p);
            }
            return total;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void delete(Path dir) {
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + dir, e);
        }
    }
}
