package dev.tessera.worker.cluster;

/** A cluster member as the job sees it: its role, its rank (-1 for the coordinator) and its address. */
public record MemberInfo(String role, int rank, String host, int pid, String address) {

    public static final String COORDINATOR = "coordinator";
    public static final String WORKER = "worker";

    public String describe() {
        String who = WORKER.equals(role) ? "rank " + rank : role;
        return who + " (pid " + pid + " on " + host + ", " + address + ")";
    }
}
