package dev.tessera.coordinator.spark;

import dev.tessera.coordinator.launch.EnvironmentLaunchers;
import dev.tessera.coordinator.launch.Launcher;
import dev.tessera.worker.job.JobConfig;
import dev.tessera.worker.job.LauncherKind;
import java.util.Optional;
import java.util.function.Function;
import org.apache.spark.sql.SparkSession;

/**
 * {@code launch.launcher: spark} for a program built on the Java API and submitted to Spark ({@code spark-submit
 * --class}, or {@code deploy/spark/tessera-submit --class}): its active session, or a new one when spark-submit
 * started this JVM (it sets {@code spark.master}), so the same program trains locally or on Spark unchanged.
 */
public final class SparkEnvironment implements EnvironmentLaunchers {

    @Override
    public LauncherKind kind() {
        return LauncherKind.SPARK;
    }

    @Override
    public Optional<Function<JobConfig, Launcher>> find() {
        scala.Option<SparkSession> session = SparkSession.getActiveSession();
        SparkSession active = session.isDefined() ? session.get() : null;
        if (active == null && System.getProperty("spark.master") != null) {
            active = SparkSession.builder().getOrCreate();
        }
        return Optional.ofNullable(active).map(SparkLaunch::launchers);
    }
}
