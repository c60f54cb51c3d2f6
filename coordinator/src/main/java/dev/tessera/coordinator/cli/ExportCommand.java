package dev.tessera.coordinator.cli;

import dev.tessera.worker.checkpoint.Checkpoint;
import dev.tessera.worker.checkpoint.HfExport;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.TypeConversionException;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** {@code tessera export}: a checkpoint as a Hugging Face model folder ({@link HfExport}). */
@Command(name = "export", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Write a checkpoint as a Hugging Face model folder: config.json (Llama, Mixtral or Qwen2-MoE),",
                "model-0000k-of-0000n.safetensors with model.safetensors.index.json, and the byte tokenizer's files.",
                "Any checkpoint: single-process, ZeRO-3-sharded or expert-parallel. A router other than top-k is",
                "exported as it is, with a warning that transformers will not route as Tessera does."})
public final class ExportCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--checkpoint", required = true, paramLabel = "DIR",
            description = "A checkpoints/step-NNNNNNN folder, or a run folder (its newest complete checkpoint).")
    Path checkpoint;

    @Option(names = "--out", required = true, paramLabel = "DIR",
            description = "The folder to create; it must not exist or be empty.")
    Path out;

    @Option(names = "--max-shard-size", paramLabel = "SIZE", defaultValue = "5GB", converter = ByteSize.class,
            description = "Most tensor bytes per safetensors file, as Hugging Face counts them: 5GB (default),"
                    + " 500MB, 2GiB, 100KB or a plain number of bytes. A larger single tensor gets a file of its own.")
    long maxShardBytes;

    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        PrintWriter log = spec.commandLine().getOut();
        Checkpoint source = Checkpoint.open(checkpoint, line -> err.println("tessera: " + line));
        HfExport.Result result = HfExport.write(source, out, maxShardBytes, line -> err.println("tessera: " + line));
        log.printf("exported step %d of %s to %s: %d tensors, %d bytes in %d safetensors file(s)%n", result.step(),
                source.dir(), result.dir(), result.tensors(), result.tensorBytes(), result.shardFiles().size());
        log.flush();
        return ExitCodes.OK;
    }

    /** Sizes as Hugging Face writes them: KB, MB, GB are powers of 1000, KiB, MiB, GiB of 1024. */
    static final class ByteSize implements ITypeConverter<Long> {

        private static final Pattern SIZE = Pattern.compile("(\\d+)\\s*([KMG]I?B|B)?");

        @Override
        public Long convert(String value) {
            Matcher m = SIZE.matcher(value.strip().toUpperCase(Locale.ROOT));
            if (!m.matches()) {
                throw new TypeConversionException("'" + value + "' is not a size; write e.g. 5GB, 500MB, 2GiB or 1048576");
            }
            String unit = m.group(2) == null ? "B" : m.group(2);
            long scale = switch (unit) {
                case "KB" -> 1_000L;
                case "MB" -> 1_000_000L;
                case "GB" -> 1_000_000_000L;
                case "KIB" -> 1L << 10;
                case "MIB" -> 1L << 20;
                case "GIB" -> 1L << 30;
                default -> 1L;
            };
            try {
                long bytes = Math.multiplyExact(Long.parseLong(m.group(1)), scale);
                if (bytes <= 0) {
                    throw new TypeConversionException("the size must be positive, got '" + value + "'");
                }
                return bytes;
            } catch (ArithmeticException | NumberFormatException e) {
                throw new TypeConversionException("'" + value + "' is too large a size");
            }
        }
    }
}
