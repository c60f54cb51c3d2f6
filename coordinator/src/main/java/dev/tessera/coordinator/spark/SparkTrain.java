package dev.tessera.coordinator.spark;

import dev.tessera.coordinator.TrainAction;
import dev.tessera.coordinator.cli.Main;
import dev.tessera.worker.blas.BlasKernel;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;

/**
 * The spark-submit main class: {@code tessera train}'s options ({@code --config FILE}, {@code --set k=v},
 * {@code --out DIR}, {@code --resume DIR}), with the workers run as the tasks of a Spark barrier stage and this
 * driver as the coordinator. The Spark session starts only once the job has been read and checked, so bad input
 * exits 2 at once. {@code deploy/spark/tessera-submit} runs it.
 */
public final class SparkTrain {

    /**
     * How often a barrier stage waiting for free slots looks again (Spark: 15 s). A restarted attempt waits for the
     * executor that replaces a lost one; looking every 2 s starts it that much sooner. A --conf given wins.
     */
    private static final String BARRIER_CHECK_INTERVAL = "spark.scheduler.barrier.maxConcurrentTasksCheck.interval";

    private SparkTrain() {
    }

    public static void main(String[] args) {
        BlasKernel.choose(); // before anything loads OpenBLAS, which reads its kernel only then
        SparkSession[] session = new SparkSession[1];
        TrainAction onSpark = request -> {
            SparkSession.Builder builder = SparkSession.builder()
                    .appName("tessera " + request.directory().root().getFileName());
            if (!new SparkConf().contains(BARRIER_CHECK_INTERVAL)) {
                builder.config(BARRIER_CHECK_INTERVAL, "2s");
            }
            session[0] = builder.getOrCreate();
            return SparkLaunch.training(session[0]).run(request);
        };
        int code;
        try {
            code = Main.train(onSpark, args);
        } finally {
            if (session[0] != null) {
                session[0].stop();
            }
        }
        System.exit(code);
    }
}
