package dev.tessera.worker.job;

/** How workers are started. */
public enum LauncherKind {
    /** Worker JVMs on this host, started and owned by the coordinator. */
    LOCAL,
    /** Hosts named in a cluster file: set by {@code tessera launch CLUSTER.yaml}, which names them. */
    CLUSTER,
    /** One worker per task of a Spark barrier stage: submitted with deploy/spark/tessera-submit. */
    SPARK
}
