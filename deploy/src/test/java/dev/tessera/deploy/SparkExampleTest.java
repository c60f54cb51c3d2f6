package dev.tessera.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The quick-start program (examples/QuickStart), unchanged, submitted to Spark with {@code deploy/spark/tessera-submit
 * --class}: with {@code launch.launcher=spark} the Trainer finds the driver's session and its workers run as the
 * tasks of a barrier stage, as {@code ./tessera example QuickStart} runs them as local processes.
 */
@Timeout(600)
class SparkExampleTest {

    @TempDir
    Path tmp;

    @Test
    void theQuickStartProgramTrainsOnSparkUnchanged() throws Exception {
        Path checkout = Path.of("").toAbsolutePath().getParent(); // surefire runs in deploy/
        Path run = tmp.resolve("run");
        DistributionTest.Result result = DistributionTest.run(checkout, List.of(
                checkout.resolve("deploy/spark/tessera-submit").toString(), "--master", "local[2]",
                "--class", "dev.tessera.examples.QuickStart", "--", run.toString(), "launch.launcher=spark",
                "train.steps=6", "optimizer.warmup_steps=2", "train.batch_size=4", "train.seq_len=32",
                "eval.every=0", "eval.batches=1", "checkpoint.every=0", "model.d_model=32", "model.n_layers=2"));
        assertEquals(0, result.code(), result.out() + result.err());
        assertTrue(result.err().contains("Running Spark version"), "the driver is a Spark application: "
                + result.err());
        assertTrue(result.out().contains("trained 6 steps"), result.out());
        assertTrue(Files.readString(run.resolve("config.yaml")).contains("launcher: spark"),
                "config.yaml records the Spark launcher");
        long steps = Files.readAllLines(run.resolve("metrics.jsonl")).stream().filter(l -> l.contains("\"loss\""))
                .count();
        assertEquals(6, steps, "a loss per step in metrics.jsonl");
        assertTrue(Files.isDirectory(run.resolve("checkpoints/step-0000006")), "the final checkpoint");
    }
}
