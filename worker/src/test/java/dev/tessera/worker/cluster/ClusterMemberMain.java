package dev.tessera.worker.cluster;

import dev.tessera.comm.ChildJvm;
import java.util.List;

/** A worker-role member in its own JVM, for tests that kill or freeze it: args jobId token port members rank deadAfterSeconds. */
public final class ClusterMemberMain {

    public static void main(String[] args) throws Exception {
        ClusterSettings settings = ClusterSettings.loopback(args[0], args[1], Integer.parseInt(args[2]),
                Integer.parseInt(args[3]), Integer.parseInt(args[5]));
        int rank = Integer.parseInt(args[4]);
        try (ClusterNode node = ClusterNode.join(settings, MemberInfo.WORKER, rank)) {
            node.publishEndpoint(rank, "aeron:ipc?rank=" + rank);
            System.out.println("joined " + node.memberCount());
            System.out.flush();
            Thread.sleep(120_000); // the test ends this process long before
        }
    }

    static List<String> command(String jobId, String token, int port, int members, int rank,
                                int deadAfterSeconds) {
        return ChildJvm.command(List.of("-Xmx256m"), ClusterMemberMain.class.getName(), List.of(jobId, token,
                Integer.toString(port), Integer.toString(members), Integer.toString(rank),
                Integer.toString(deadAfterSeconds)));
    }
}
