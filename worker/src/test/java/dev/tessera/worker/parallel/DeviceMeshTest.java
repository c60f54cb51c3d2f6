package dev.tessera.worker.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tessera.comm.Communicator;
import dev.tessera.comm.InProcessComms;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Four communicators in this JVM on one real media driver, each rank building its device mesh. */
class DeviceMeshTest {

    static final String JOB = "devmesh" + ProcessHandle.current().pid();
    private InProcessComms ranks;

    @BeforeEach
    void connect() throws Exception {
        ranks = InProcessComms.connect(JOB, 4, 52000 + (int) (ProcessHandle.current().pid() % 1000) * 4);
    }

    @AfterEach
    void close() {
        ranks.close();
        assertFalse(Files.exists(ranks.directory()));
    }

    @Test
    void everyDimensionGetsItsGroupAndTheGroupsCarryCollectives() throws Exception {
        Mesh mesh = new Mesh(2, 2, 2);
        DeviceMesh[] meshes = onEveryRank(comm -> DeviceMesh.create(comm, mesh));
        for (int r = 0; r < 4; r++) {
            DeviceMesh m = meshes[r];
            assertEquals(r, m.rank());
            assertArrayEquals(mesh.dataParallelGroup(r), m.dataParallel().ranks());
            assertArrayEquals(mesh.sequenceParallelGroup(r), m.sequenceParallel().ranks());
            assertArrayEquals(mesh.expertGroup(r), m.expertParallel().ranks());
            assertArrayEquals(mesh.expertDataParallelGroup(r), m.expertDataParallel().ranks());
            assertArrayEquals(new int[] {0, 1, 2, 3}, m.workers().ranks());
            assertFalse(m.dataParallel().isLocal());
            assertEquals(mesh.batchSlice(r, 8), m.batchSlice(8));
        }
        // Each data-parallel group's first member broadcasts its global rank: the members learn it from their own
        // group only (ranks 0 and 2 hear 0, ranks 1 and 3 hear 1).
        long[] heard = new long[4];
        onEveryRank(comm -> {
            MeshGroup dp = meshes[comm.rank()].dataParallel();
            UnsafeBuffer value = new UnsafeBuffer(ByteBuffer.allocateDirect(Long.BYTES));
            value.putLong(0, dp.rank() == 0 ? comm.rank() : -1);
            dp.broadcast(value, 0);
            meshes[comm.rank()].workers().barrier();
            heard[comm.rank()] = value.getLong(0);
            return null;
        });
        assertArrayEquals(new long[] {0, 1, 0, 1}, heard);
    }

    @Test
    void aDimensionOfOneRankIsLocalAndCostsNothing() throws Exception {
        DeviceMesh[] meshes = onEveryRank(comm -> DeviceMesh.create(comm, new Mesh(4, 1, 1)));
        for (DeviceMesh m : meshes) {
            assertTrue(m.sequenceParallel().isLocal());
            assertTrue(m.expertParallel().isLocal());
            assertEquals(1, m.sequenceParallel().size());
            assertThrows(IllegalStateException.class, () -> m.sequenceParallel().process());
            assertSame(m.dataParallel(), m.workers(), "dp = W: the workers' group is the data-parallel one");
            assertEquals(4, m.dataParallel().size());
        }
        DeviceMesh single = DeviceMesh.single();
        assertTrue(single.isStandalone());
        assertTrue(single.dataParallel().isLocal());
        UnsafeBuffer value = new UnsafeBuffer(new byte[8]);
        value.putLong(0, 42);
        single.dataParallel().broadcast(value, 0);
        single.workers().barrier();
        assertEquals(42, value.getLong(0));
    }

    private <T> DeviceMesh[] onEveryRank(Function<Communicator, T> action) throws Exception {
        List<CompletableFuture<T>> results = new ArrayList<>();
        for (int r = 0; r < ranks.size(); r++) {
            Communicator c = ranks.get(r);
            results.add(CompletableFuture.supplyAsync(() -> action.apply(c)));
        }
        DeviceMesh[] meshes = new DeviceMesh[ranks.size()];
        for (int r = 0; r < ranks.size(); r++) {
            T result = results.get(r).get(30, TimeUnit.SECONDS);
            meshes[r] = result instanceof DeviceMesh m ? m : null;
        }
        return meshes;
    }
}
