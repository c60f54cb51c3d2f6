package dev.tessera.examples.spark;

import dev.tessera.comm.UserInputException;
import dev.tessera.coordinator.TrainResult;
import dev.tessera.coordinator.Trainer;
import dev.tessera.coordinator.cli.ErrorReporter;
import dev.tessera.coordinator.spark.SparkLaunch;
import dev.tessera.examples.ExampleJob;

import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.spark.api.java.function.FilterFunction;
import org.apache.spark.api.java.function.MapFunction;
import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.SparkSession;

/**
 * A Spark job that trains on text it prepares: whatever Spark reads ({@code spark.read().textFile}: a file, a
 * folder, a glob, {@code hdfs://} or {@code s3a://}) becomes a {@code Dataset<String>}, is cleaned there (lines
 * stripped, empty ones dropped), written once for the workers ({@link SparkLaunch#writeText}), and trained on
 * ({@code examples/jobs/own-text.yaml}) with each worker a task of a Spark barrier stage.
 * <pre>
 *   deploy/spark/tessera-submit --master 'local[2]' --class dev.tessera.examples.spark.SparkTextCorpus -- \
 *       TEXT [run-directory] [key=value ...]
 * </pre>
 * The prepared text is {@code <run-directory>.txt}. Every data-parallel rank reads its own slice of each global batch
 * from it, so on several machines it must be on storage that every executor's host sees at the same path, as the
 * run directory must.
 */
public final class SparkTextCorpus {

    private SparkTextCorpus() {
    }

    public static void main(String[] args) {
        ErrorReporter.exitWith(() -> ExampleJob.report(train(args)));
    }

    /** Prepares the text with Spark and trains on it; {@link #main} reports the result. */
    static TrainResult train(String[] args) throws Exception {
        if (args.length < 1) {
            throw new UserInputException("SparkTextCorpus needs the text for Spark to read: a file, a folder or a"
                    + " glob, local or hdfs://..., e.g. -- /data/books runs/spark-text");
        }
        String source = args[0];
        boolean localFile = !source.contains("://") && source.chars().noneMatch(c -> "*?[{".indexOf(c) >= 0);
        if (localFile && !Files.exists(Path.of(source))) { // found before Spark starts, as SparkTrain checks its job
            throw new UserInputException(source + ": no such file or folder; give the text for Spark to read: a"
                    + " file, a folder or a glob, local or hdfs://...");
        }
        Path out = Path.of(args.length > 1 ? args[1] : "runs/spark-text").toAbsolutePath();
        SparkSession spark = SparkSession.builder().appName("tessera SparkTextCorpus").getOrCreate();
        try {
            Path text = SparkLaunch.writeText(cleaned(read(spark, source)), out.resolveSibling(out.getFileName()
                    + ".txt"));
            Trainer.Builder builder = Trainer.builder().config(ExampleJob.file("own-text.yaml")).out(out)
                    .set("data.path", text.toString())
                    .set("launch.launcher", "spark")
                    .trainWith(SparkLaunch.training(spark));
            ExampleJob.sets(args, 2).forEach(builder::set);
            return builder.build().fit();
        } finally {
            spark.stop();
        }
    }

    private static Dataset<String> read(SparkSession spark, String text) {
        try {
            return spark.read().textFile(text);
        } catch (Exception e) { // Spark declares none, but throws AnalysisException for a path it cannot find
            if (e instanceof AnalysisException) {
                throw new UserInputException("Spark cannot read the text " + text + ": " + e.getMessage()
                        + "; give a file, a folder or a glob that exists");
            }
            throw e;
        }
    }

    /** The training text: each line stripped of surrounding white space, empty lines dropped. */
    static Dataset<String> cleaned(Dataset<String> lines) {
        return lines.map((MapFunction<String, String>) String::strip, Encoders.STRING())
                .filter((FilterFunction<String>) line -> !line.isEmpty());
    }
}
