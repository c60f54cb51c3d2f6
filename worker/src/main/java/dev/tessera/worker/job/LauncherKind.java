package dev.tessera.worker.job;

/** How workers are started. Later launchers are listed so their configs fail with "not implemented yet". */
public enum LauncherKind {
    /** Worker JVMs on this host, started and owned by the coordinator. */
    LOCAL(true),
    /** Hosts named in a cluster YAML. */
    CLUSTER(false),
    /** One worker per task of a Spark barrier stage: submitted with deploy/spark/tessera-submit. */
    SPARK(true);

    private final boolean implemented;

    LauncherKind(boolean implemented) {
        this.implemented = implemented;
    }

    public boolean implemented() {
        return implemented;
    }
}
