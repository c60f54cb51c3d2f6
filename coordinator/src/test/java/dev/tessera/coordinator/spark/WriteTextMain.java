package dev.tessera.coordinator.spark;

import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.SparkSession;

/** Writes a three-partition Dataset of lines to args[0] with {@link SparkLaunch#writeText}, in local[2]. */
public final class WriteTextMain {

    private WriteTextMain() {
    }

    public static void main(String[] args) {
        SparkSession spark = SparkSession.builder().master("local[2]").appName("write-text").getOrCreate();
        try {
            List<String> lines = List.of("first line", "second line", "third line", "fourth line", "fifth line");
            SparkLaunch.writeText(spark.createDataset(lines, Encoders.STRING()).repartition(3)
                    .sortWithinPartitions("value"), Path.of(args[0]));
        } finally {
            spark.stop();
        }
    }
}
