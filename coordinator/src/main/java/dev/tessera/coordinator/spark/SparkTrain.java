package dev.tessera.coordinator.spark;

import dev.tessera.coordinator.TrainAction;
import dev.tessera.coordinator.cli.Main;
import dev.tessera.worker.blas.BlasKernel;
import org.apache.spark.sql.SparkSession;

/**
 * The spark-submit main class: {@code tessera train}'s options ({@code --config FILE}, {@code --set k=v},
 * {@code --out DIR}, {@code --resume DIR}), with the workers run as the tasks of a Spark barrier stage and this
 * driver as the coordinator. The Spark session starts only once the job has been read and checked, so bad input
 * exits 2 at once. {@code deploy/spark/tessera-submit} runs it.
 */
public final class SparkTrain {

    private SparkTrain() {
    }

    public static void main(String[] args) {
        BlasKernel.choose(); // before anything loads OpenBLAS, which reads its kernel only then
        SparkSession[] session = new SparkSession[1];
        TrainAction onSpark = request -> {
            session[0] = SparkSession.builder().appName("tessera " + request.directory().root().getFileName())
                    .getOrCreate();
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
