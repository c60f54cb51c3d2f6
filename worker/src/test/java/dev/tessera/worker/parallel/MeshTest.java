package dev.tessera.worker.parallel;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class MeshTest {

    @Test
    void sequenceCoordinateVariesFastest() {
        Mesh mesh = new Mesh(2, 3, 1);
        assertEquals(6, mesh.world());
        assertEquals(new Mesh.Coords(0, 2), mesh.coords(2));
        assertEquals(new Mesh.Coords(1, 0), mesh.coords(3));
        for (int r = 0; r < mesh.world(); r++) {
            Mesh.Coords c = mesh.coords(r);
            assertEquals(r, mesh.rank(c.d(), c.s()));
        }
        assertArrayEquals(new int[] {3, 4, 5}, mesh.sequenceParallelGroup(4));
        assertArrayEquals(new int[] {1, 4}, mesh.dataParallelGroup(4));
    }

    @Test
    void groupsPartitionTheWorld() {
        Mesh mesh = new Mesh(4, 2, 4);
        for (int r = 0; r < mesh.world(); r++) {
            assertContains(mesh.dataParallelGroup(r), r);
            assertContains(mesh.sequenceParallelGroup(r), r);
            assertContains(mesh.expertGroup(r), r);
            assertContains(mesh.expertDataParallelGroup(r), r);
        }
        assertArrayEquals(new int[] {4, 5, 6, 7}, mesh.expertGroup(6));
        assertArrayEquals(new int[] {2, 6}, mesh.expertDataParallelGroup(6));
    }

    @Test
    void slicesCoverTheWholeWithoutOverlap() {
        Mesh mesh = new Mesh(2, 2, 2);
        Set<Integer> experts = new HashSet<>();
        for (int r = 0; r < mesh.world(); r++) {
            Mesh.Range b = mesh.batchSlice(r, 8);
            Mesh.Range t = mesh.sequenceSegment(r, 128);
            assertEquals(4, b.size());
            assertEquals(64, t.size());
            assertEquals(mesh.coords(r).d() * 4, b.start());
            assertEquals(mesh.coords(r).s() * 64, t.start());
            Mesh.Range e = mesh.ownedExperts(r, 8);
            for (int i = e.start(); i < e.end(); i++) {
                experts.add(i + 8 * (r / mesh.ep()));
            }
        }
        assertEquals(16, experts.size(), "each expert group of ep ranks holds all 8 experts once");
    }

    @Test
    void impossibleMeshesAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new Mesh(0, 1, 1));
        assertThrows(IllegalArgumentException.class, () -> new Mesh(2, 1, 3));
        assertThrows(IllegalArgumentException.class, () -> new Mesh(2, 1, 1).batchSlice(0, 7));
        assertThrows(IllegalArgumentException.class, () -> new Mesh(2, 1, 1).coords(2));
    }

    private static void assertContains(int[] ranks, int rank) {
        assertEquals(1, Arrays.stream(ranks).filter(x -> x == rank).count(), Arrays.toString(ranks) + " lacks " + rank);
    }
}
