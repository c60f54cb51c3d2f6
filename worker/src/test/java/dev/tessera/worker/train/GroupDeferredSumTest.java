package dev.tessera.worker.train;

import dev.tessera.comm.InProcessComms;
import dev.tessera.worker.parallel.DeviceMesh;
import dev.tessera.worker.parallel.GroupReplicaReducer;
import dev.tessera.worker.parallel.Mesh;
import dev.tessera.worker.parallel.MeshGroup;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class GroupDeferredSumTest {

    /**
     * Three ranks sum a value per step while other collectives of their data-parallel group run between start and
     * await (the next step's work): every rank gets the same sum, step after step.
     */
    @Test
    void everyRankGetsTheSumWhileTheGroupRunsOtherCollectives() throws Exception {
        int n = 3;
        int steps = 5;
        String job = "deferredsum" + ProcessHandle.current().pid();
        int port = 56000 + (int) (ProcessHandle.current().pid() % 500) * 4;
        ExecutorService threads = Executors.newFixedThreadPool(n);
        try (InProcessComms comms = InProcessComms.connect(job, n, port)) {
            List<Future<double[]>> results = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                int rank = r;
                results.add(threads.submit(() -> {
                    MeshGroup workers = DeviceMesh.create(comms.get(rank), new Mesh(n, 1, 1)).workers();
                    DeferredSum sum = new GroupDeferredSum(workers.channel("step-loss"));
                    GroupReplicaReducer replicas = new GroupReplicaReducer(workers.process());
                    double[] sums = new double[steps];
                    for (int step = 0; step < steps; step++) {
                        sum.start(0.5 * (rank + 1) + step);
                        replicas.sumInPlace(new double[] {rank, step}); // the next step's own collective
                        sums[step] = sum.await();
                    }
                    return sums;
                }));
            }
            double[] expected = new double[steps];
            for (int step = 0; step < steps; step++) {
                expected[step] = 0.5 + 1.0 + 1.5 + 3 * step;
            }
            for (int r = 0; r < n; r++) {
                assertArrayEquals(expected, results.get(r).get(60, TimeUnit.SECONDS), 0.0, "rank " + r);
            }
        } finally {
            threads.shutdownNow();
        }
    }

    @Test
    void oneReplicaSumsItsOwnValueAndTheOrderIsChecked() throws Exception {
        DeferredSum local = DeferredSum.local();
        local.start(2.5);
        assertEquals(2.5, local.await(), 0.0);
        String job = "deferredsum1" + ProcessHandle.current().pid();
        int port = 57000 + (int) (ProcessHandle.current().pid() % 500) * 4;
        try (InProcessComms comms = InProcessComms.connect(job, 1, port)) {
            DeferredSum sum = new GroupDeferredSum(comms.get(0).group("one", new int[] {0}));
            assertThrows(IllegalStateException.class, sum::await, "nothing was started");
            sum.start(1.25);
            assertThrows(IllegalStateException.class, () -> sum.start(2), "one sum at a time");
            assertEquals(1.25, sum.await(), 0.0);
        }
    }
}
