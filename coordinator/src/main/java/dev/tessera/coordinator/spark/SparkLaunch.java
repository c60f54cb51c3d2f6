package dev.tessera.coordinator.spark;

import dev.tessera.coordinator.ClusterTraining;
import dev.tessera.coordinator.launch.Launcher;
import dev.tessera.worker.io.AtomicFiles;
import dev.tessera.worker.job.JobConfig;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.function.Function;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.SparkSession;

/**
 * Tessera on Spark from Java: this driver is the coordinator, and each attempt's workers run as the tasks of a
 * barrier stage of {@code spark}.
 * <pre>{@code
 * SparkSession spark = SparkSession.builder().getOrCreate();
 * Path text = SparkLaunch.writeText(spark.read().textFile("hdfs://corpus/*.txt"), Path.of("corpus.txt"));
 * Trainer.builder().config(Path.of("job.yaml"))
 *         .set("data.source", "text").set("data.path", text.toString())
 *         .trainWith(SparkLaunch.training(spark))
 *         .build().fit();
 * }</pre>
 */
public final class SparkLaunch {

    private SparkLaunch() {
    }

    /** One Spark launcher per attempt of the job, for {@code new ClusterTraining(...)}. */
    public static Function<JobConfig, Launcher> launchers(SparkSession spark) {
        return job -> new SparkLauncher(spark.sparkContext(), job);
    }

    /** Trains on Spark: {@link ClusterTraining} (restarts, checkpoints, the run directory) over {@link #launchers}. */
    public static ClusterTraining training(SparkSession spark) {
        return new ClusterTraining(launchers(spark));
    }

    /**
     * Writes the rows of {@code text} to {@code file}, one line each, in the Dataset's order, as a new file that
     * appears whole (temporary file, fsync, rename), and returns it: train on it with {@code data.source: text}.
     * The rows stream through the driver one partition at a time. Every data-parallel rank then reads its own
     * slice of each global batch from it, as it would from any text file.
     */
    public static Path writeText(Dataset<String> text, Path file) {
        Path target = file.toAbsolutePath();
        Path tmp = target.resolveSibling("." + target.getFileName() + ".tmp-" + AtomicFiles.randomSuffix());
        try {
            Files.createDirectories(target.getParent());
            try (BufferedWriter out = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
                for (Iterator<String> rows = text.toLocalIterator(); rows.hasNext(); ) {
                    out.write(rows.next());
                    out.write('\n');
                }
            }
            AtomicFiles.fsyncFile(tmp);
            AtomicFiles.moveAtomically(tmp, target);
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the Dataset's text to " + target, e);
        } finally {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException e) {
                // nothing more to do: it is a hidden temporary file
            }
        }
    }
}
