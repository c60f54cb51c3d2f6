package dev.tessera.coordinator.cli;

import dev.tessera.worker.bench.CheckpointBench;
import dev.tessera.worker.bench.ModelPreset;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code tessera bench checkpoint}: a preset's checkpoint written and read back, against dd on the same disk. */
@Command(name = "checkpoint", mixinStandardHelpOptions = true,
        description = "Write and read back a checkpoint of a preset's model and AdamW state; time dd on the same disk.")
public final class BenchCheckpointCommand implements Callable<Integer> {

    @Option(names = "--preset", required = true, paramLabel = "dense|moe|wide|large", description = "Model shape.")
    ModelPreset preset;

    @Option(names = "--dir", paramLabel = "DIR", defaultValue = "runs",
            description = "Where to write (a temporary folder inside it, removed after) (default: ${DEFAULT-VALUE}).")
    Path dir;

    @Option(names = "--drop-caches", description = "Drop the page cache before each read (needs root), so reads"
            + " come from the disk.")
    boolean dropCaches;

    @Option(names = "--json", description = "Print one JSON object instead of a line of text.")
    boolean json;

    @Override
    public Integer call() {
        CheckpointBench.Result r = CheckpointBench.run(preset, dir, dropCaches);
        if (json) {
            System.out.println(r.json());
        } else {
            System.out.printf("preset %s: checkpoint of %,d bytes written at %.2f GB/s (dd at its best %.2f GB/s, %.0f%%),"
                            + " read at %.2f GB/s (dd %.2f GB/s, %.0f%%)%s%n", r.preset(), r.bytes(), r.writeGbps(),
                    r.ddWriteGbps(), 100 * r.writeGbps() / r.ddWriteGbps(), r.readGbps(), r.ddReadGbps(),
                    100 * r.readGbps() / r.ddReadGbps(), r.cold() ? ", reads from a dropped page cache" : "");
        }
        return 0;
    }
}
